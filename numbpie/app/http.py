"""The HTTP API for shops: FastAPI handlers that turn requests into `Pipeline` calls and results into JSON.

    python -m numbpie serve [--catalog DIR] [--host 127.0.0.1] [--port 8000] [--api-key-file FILE]

Handlers hold no logic the page lacks; a user's mistake (`numbpie.errors.UserError`) becomes a
4xx `{"error": sentence}` in one exception handler. With a key (required off loopback), every
request but /health needs `Authorization: Bearer <key>`.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import ipaddress
import json
import sys
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from numbpie import images
from numbpie.app.pipeline import Match, Pipeline
from numbpie.catalog import IMAGE_SUFFIXES, Product
from numbpie.errors import CatalogError, ImageError, OptionError, TagError, UnsupportedImageError, UserError

__all__ = ["MAX_BODY_BYTES", "create_app", "read_api_key", "serve"]

# The page's upload limit plus room for the multipart framing and the tags field.
MAX_BODY_BYTES = images.DEFAULT_MAX_BYTES + 64_000
MIN_KEY_CHARS = 16
MAX_TAGS_CHARS = 2_000  # a few attribute: value pairs; error messages quote the values
MAX_ID = 2**63 - 1  # SQLite's INTEGER range: a larger id would overflow in the lookup, not miss
OPEN_PATHS = frozenset({"/health"})


ProductId = Annotated[int, PathParam(ge=0, le=MAX_ID, description="catalog product id")]
K = Annotated[int, Query(ge=1, le=100, description="number of results")]


class UnknownProductError(CatalogError):
    """A product id the catalog does not hold."""


class UploadTooLargeError(ImageError):
    """An upload over the image byte limit."""


# The one table from a user's mistake to an HTTP status; any other UserError is a 422.
STATUS = ((UploadTooLargeError, 413), (UnsupportedImageError, 415), (UnknownProductError, 404))


class ProductOut(BaseModel):
    id: int
    title: str
    category: str
    attributes: dict[str, Any]
    image_url: str


class MatchOut(ProductOut):
    score: float


class SearchOut(BaseModel):
    results: list[MatchOut]
    box: list[float] | None
    preferred_tags: dict[str, str] = Field(
        default_factory=dict,
        description="after an edit: results carrying these tags (read on the edited garment) come first")
    timings_ms: dict[str, float]


class SimilarOut(BaseModel):
    results: list[MatchOut]


class HealthOut(BaseModel):
    status: str
    products: int
    embedder: str
    models: dict[str, bool]


class ErrorOut(BaseModel):
    error: str


def _product_out(product: Product) -> dict:
    """A product as JSON; its image is a URL by id, so no file path ever leaves the server."""
    return {"id": product.id, "title": product.title, "category": product.category,
            "attributes": product.attributes, "image_url": f"/products/{product.id}/image"}


def _matches_out(matches: list[Match]) -> list[dict]:
    return [{**_product_out(m.product), "score": round(m.score, 6)} for m in matches]


def _tags(text: str | None) -> dict:
    """The `tags` form field: a JSON object such as {"sleeve_length": "short"}; empty means none."""
    if not text or not text.strip():
        return {}
    if len(text) > MAX_TAGS_CHARS:
        raise TagError(f"The tags field is longer than {MAX_TAGS_CHARS:,} characters; send an object such as "
                       '{"fit": "loose"}.')
    try:
        tags = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        reason = error.msg if isinstance(error, json.JSONDecodeError) else "nested too deep"
        raise TagError(f"The tags field is not JSON ({reason}); send an object such as "
                       '{"fit": "loose"}.') from None
    if not isinstance(tags, dict):
        raise TagError('The tags field must be a JSON object such as {"fit": "loose"}.')
    return tags


def _upload(image: UploadFile) -> bytes:
    """The uploaded file's bytes, refusing more than the page's byte limit before reading them all."""
    data = image.file.read(images.DEFAULT_MAX_BYTES + 1)
    if len(data) > images.DEFAULT_MAX_BYTES:
        raise UploadTooLargeError(f"The image is larger than the {images.DEFAULT_MAX_BYTES:,}-byte limit.")
    return data


def _status(error: UserError) -> int:
    return next((code for kind, code in STATUS if isinstance(error, kind)), 422)


def _validation_sentence(error: RequestValidationError) -> str:
    """FastAPI's first validation problem as one sentence, e.g. 'Query parameter k: ...'."""
    problems = error.errors()
    if not problems:
        return "The request is not valid."
    first = problems[0]
    where, *names = first.get("loc", ("request",))
    place = {"query": "Query parameter", "path": "Path parameter", "body": "Form field",
             "header": "Header"}.get(where, str(where))
    name = ".".join(str(n) for n in names) or "body"
    return f"{place} {name}: {first.get('msg', 'invalid').rstrip('.')}."


class BodyLimit:
    """ASGI middleware: a body over `max_bytes` is a 413, from its Content-Length or as it streams in."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:  # refused before reading a byte
            await JSONResponse({"error": self.sentence()}, status_code=413)(scope, receive, send)
            return
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:  # FastAPI passes an HTTPException from the body parser through
                raise HTTPException(413, self.sentence())
            return message

        await self.app(scope, counted, send)

    def sentence(self) -> str:
        return f"The request body is larger than the {self.max_bytes:,}-byte limit."


class BearerKey:
    """ASGI middleware: every request but the open paths needs `Authorization: Bearer <key>`."""

    def __init__(self, app, key: str):
        self.app = app
        self.expected = hashlib.sha256(f"Bearer {key}".encode()).digest()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"] not in OPEN_PATHS:
            given = dict(scope["headers"]).get(b"authorization", b"")
            # Equal-length digests, compared in constant time: neither the key nor its length leaks.
            if not hmac.compare_digest(hashlib.sha256(given).digest(), self.expected):
                refusal = JSONResponse({"error": "Missing or wrong API key; send the header "
                                                 "'Authorization: Bearer <key>'."},
                                       status_code=401, headers={"WWW-Authenticate": "Bearer"})
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(pipeline: Pipeline, api_key: str | None = None) -> FastAPI:
    """The API over one loaded `pipeline`; with `api_key`, every request but /health must carry it."""
    app = FastAPI(title="numbpie", version="1",
                  summary="Fashion visual search over a catalog: search by photo, restyle, browse.",
                  responses={code: {"model": ErrorOut} for code in (401, 404, 413, 422)})

    @app.exception_handler(UserError)
    async def user_error(request: Request, error: UserError) -> JSONResponse:
        """The one place the API turns a user's mistake into a status and a sentence."""
        return JSONResponse({"error": str(error)}, status_code=_status(error))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": _validation_sentence(error)}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        sentences = {404: f"No such endpoint: {request.method} {request.url.path}; see /docs.",
                     405: f"{request.method} is not allowed on {request.url.path}; see /docs."}
        text = sentences.get(error.status_code) or f"{str(error.detail).rstrip('.')}."
        return JSONResponse({"error": text}, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(Exception)
    async def bug(request: Request, error: Exception) -> JSONResponse:
        return JSONResponse({"error": "Internal error (a bug in numbpie, not in the request)."}, status_code=500)

    def lookup(product_id: int) -> Product:
        try:
            return pipeline.catalog.get([product_id])[0]
        except KeyError:
            raise UnknownProductError(f"No product {product_id} in the catalog.") from None

    @app.post("/search", response_model=SearchOut)
    def search(image: Annotated[UploadFile, File(description="the photo (JPEG, PNG, WEBP, BMP, GIF)")],
               tags: Annotated[str | None, Form(description='JSON, e.g. {"sleeve_length": "short"}')] = None,
               k: K = 5, category: str | None = None,
               min_score: Annotated[float, Query(ge=-1, le=1)] = 0.0, detect: bool = True) -> dict:
        """The catalog products most similar to the garment in the photo, restyled first by `tags`."""
        result = pipeline.search(_upload(image), k, tags=_tags(tags), detect=detect, min_score=min_score,
                                 category=category or None)
        return {"results": _matches_out(result.matches),
                "box": [float(v) for v in result.box] if result.box is not None else None,
                "preferred_tags": result.prefer,
                "timings_ms": {step: round(s * 1000, 3) for step, s in result.timings.items()}}

    @app.post("/edit", response_class=Response,
              responses={200: {"content": {"image/png": {}}, "description": "the edited garment"}})
    def edit(image: Annotated[UploadFile, File(description="the photo")],
             tags: Annotated[str, Form(description='JSON, e.g. {"pattern": "floral"}')],
             detect: bool = True) -> Response:
        """The garment in the photo restyled by `tags`, as PNG."""
        tags = _tags(tags)
        if not tags:
            raise TagError('Give at least one tag to edit, e.g. {"sleeve_length": "long"}.')
        result = pipeline.search(_upload(image), 1, tags=tags, detect=detect)
        out = io.BytesIO()
        result.edit.image.save(out, "PNG")
        steps = ",".join(name for name, _ in result.edit.steps)
        return Response(out.getvalue(), media_type="image/png", headers={"X-Edit-Steps": steps})

    @app.get("/products/{product_id}", response_model=ProductOut)
    def product(product_id: ProductId) -> dict:
        """One catalog product."""
        return _product_out(lookup(product_id))

    @app.get("/products/{product_id}/image", response_class=FileResponse,
             responses={200: {"content": {"image/*": {}}, "description": "the product's image file"}})
    def product_image(product_id: ProductId) -> FileResponse:
        """The product's image file."""
        path = Path(lookup(product_id).image)
        if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
            raise UnknownProductError(f"The image of product {product_id} is missing from the catalog.")
        return FileResponse(path)

    @app.get("/products/{product_id}/similar", response_model=SimilarOut)
    def similar(product_id: ProductId, k: K = 5) -> dict:
        """The k products nearest to this one, by its indexed vector (itself left out)."""
        lookup(product_id)
        return {"results": _matches_out(pipeline.similar(product_id, k))}

    @app.get("/health", response_model=HealthOut)
    def health() -> dict:
        """Open to all: which models are loaded, the catalog size, the embedder."""
        return {"status": "ok", "products": len(pipeline.catalog), "embedder": pipeline.embedder.name,
                "models": {"embedder": True, "detector": pipeline.detector is not None,
                           "editor": pipeline.editor is not None, "tagger": pipeline.tagger is not None}}

    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    if api_key is not None:  # added last, so it runs first: a stranger's body is never read
        app.add_middleware(BearerKey, key=api_key)
    return app


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


def read_api_key(path: str | Path) -> str:
    """The key in `path` (surrounding whitespace dropped); missing, unreadable or short is an OptionError."""
    try:
        key = Path(path).read_text().strip()
    except (OSError, UnicodeDecodeError) as error:
        raise OptionError(f"Cannot read the API key file {path} ({type(error).__name__}).") from None
    if len(key) < MIN_KEY_CHARS or any(c.isspace() for c in key):
        raise OptionError(f"The API key in {path} must be at least {MIN_KEY_CHARS} characters without spaces; "
                          "make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'.")
    return key


def serve(catalog: str | Path | None = None, host: str = "127.0.0.1", port: int = 8000,
          api_key_file: str | Path | None = None) -> None:
    """Check the host and key, load the models once (`open_pipeline`) and warm them up, then run uvicorn."""
    import uvicorn

    from numbpie.app.assemble import open_pipeline

    if api_key_file is None and not _is_loopback(host):
        raise OptionError(f"Binding {host} opens the API beyond this machine; give --api-key-file FILE "
                          "(every request but /health must then carry the key), or bind 127.0.0.1.")
    key = read_api_key(api_key_file) if api_key_file is not None else None
    pipeline = open_pipeline(catalog)
    pipeline.warm_up()
    shown = f"[{host}]" if ":" in host else host
    print(f"numbpie: serving {len(pipeline.catalog)} products on http://{shown}:{port} (API docs at /docs)"
          + ("; requests need the API key" if key else ""), file=sys.stderr, flush=True)
    uvicorn.run(create_app(pipeline, api_key=key), host=host, port=port, log_level="warning")
