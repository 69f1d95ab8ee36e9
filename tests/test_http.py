"""The HTTP API end to end: `python -m numbpie serve` in a subprocess on loopback, driven with httpx.

One open server over a 24-product demo catalog for the module, one keyed server for the key
check; answers are compared with the same Pipeline run in this process.
"""

from __future__ import annotations

import io
import json
import re
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from benchmarks.server import running_server
from numbpie import images
from numbpie.app.pipeline import Pipeline
from numbpie.cli import main

pytestmark = pytest.mark.slow
KEY = "test-key-0123456789abcdef"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("http-data")


def _env(data_dir: Path) -> dict:
    return {"NUMBPIE_DATA": str(data_dir), "NUMBPIE_DEMO_PRODUCTS": "24"}


@pytest.fixture(scope="module")
def server(data_dir):
    """The open server over the demo catalog (rendered and indexed on its first start)."""
    with running_server([], _env(data_dir), log=data_dir / "server.log") as url:
        yield url


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server, timeout=120) as http:
        yield http


@pytest.fixture(scope="module")
def local(server, data_dir) -> Pipeline:
    """The same catalog, index and embedder in this process (no detector: whole-image or boxed queries)."""
    return Pipeline.open(data_dir / "demo")


@pytest.fixture(scope="module")
def shots(local) -> dict:
    """A product shot and a street photo of the demo catalog, as bytes."""
    product = next(iter(local.catalog))
    street = sorted((local.catalog.root / "street").glob("*.*"))[0]
    return {"product": product, "product_bytes": Path(product.image).read_bytes(),
            "street_bytes": street.read_bytes()}


def post_search(client, data: bytes, params=None, tags=None, headers=None) -> httpx.Response:
    form = {"tags": json.dumps(tags)} if tags is not None else None
    return client.post("/search", params=params, files={"image": ("query.png", data, "image/png")},
                       data=form, headers=headers)


def assert_error(reply: httpx.Response, status: int, *needles: str) -> str:
    """A JSON {"error": one sentence} with `status`, mentioning each needle."""
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    body = reply.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"].strip()
    assert "\n" not in body["error"] and "Traceback" not in body["error"]
    for needle in needles:
        assert needle in body["error"], body["error"]
    return body["error"]


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_health_reports_models_catalog_and_embedder(client):
    reply = client.get("/health")
    assert reply.status_code == 200
    assert reply.json() == {"status": "ok", "products": 24, "embedder": "bundled",
                            "models": {"embedder": True, "detector": True, "editor": True, "tagger": True}}


def test_search_whole_photo_gives_the_pipelines_ids_and_scores(client, local, shots):
    reply = post_search(client, shots["product_bytes"], {"detect": "false", "k": 5})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    expected = local.search(shots["product_bytes"], 5, detect=False).matches
    assert [r["id"] for r in body["results"]] == [m.product.id for m in expected]
    assert [r["score"] for r in body["results"]] == pytest.approx([m.score for m in expected], abs=1e-5)
    first = body["results"][0]
    assert first["id"] == shots["product"].id and first["score"] == pytest.approx(1.0, abs=1e-4)
    assert first == {"id": shots["product"].id, "title": shots["product"].title, "score": first["score"],
                     "category": shots["product"].category, "attributes": shots["product"].attributes,
                     "image_url": f"/products/{shots['product'].id}/image"}
    assert body["box"] is None
    assert {"load", "embed", "search", "lookup"} <= set(body["timings_ms"])
    assert "detect" not in body["timings_ms"]


def test_search_street_photo_detects_the_garment_and_searches_its_box(client, local, shots):
    reply = post_search(client, shots["street_bytes"])  # detect defaults to true
    assert reply.status_code == 200, reply.text
    body = reply.json()
    photo = images.load(shots["street_bytes"])
    x0, y0, x1, y1 = body["box"]
    assert 0 <= x0 < x1 <= photo.width and 0 <= y0 < y1 <= photo.height
    assert (x1 - x0) * (y1 - y0) < photo.width * photo.height  # a garment, not the whole scene
    assert "detect" in body["timings_ms"]
    expected = local.search(photo, 5, box=body["box"]).matches
    assert [r["id"] for r in body["results"]] == [m.product.id for m in expected]
    assert [r["score"] for r in body["results"]] == pytest.approx([m.score for m in expected], abs=1e-4)


def test_search_filters_k_category_and_min_score(client, local, shots):
    data = shots["product_bytes"]
    three = post_search(client, data, {"detect": "false", "k": 3}).json()["results"]
    assert len(three) == 3
    other = "top" if shots["product"].category == "dress" else "dress"
    filtered = post_search(client, data, {"detect": "false", "k": 4, "category": other}).json()["results"]
    assert len(filtered) == 4 and all(r["category"] == other for r in filtered)
    expected = local.search(data, 4, detect=False, category=other).matches
    assert [r["id"] for r in filtered] == [m.product.id for m in expected]
    strict = post_search(client, data, {"detect": "false", "k": 10, "min_score": 0.999}).json()["results"]
    assert [r["id"] for r in strict] == [shots["product"].id]


def other_pattern(product) -> dict:
    """A pattern tag the product does not have, so the editor has something to do."""
    return {"pattern": "floral" if product.attributes.get("pattern") != "floral" else "stripes"}


def test_search_with_tags_edits_the_garment_first(client, shots):
    plain = post_search(client, shots["product_bytes"], {"detect": "false"}).json()
    edited = post_search(client, shots["product_bytes"], {"detect": "false"}, tags=other_pattern(shots["product"])).json()
    assert "edit" in edited["timings_ms"] and "edit" not in plain["timings_ms"]
    assert len(edited["results"]) == 5
    # the query is no longer the catalog image itself, so it no longer scores 1
    assert edited["results"][0]["score"] < plain["results"][0]["score"] - 1e-4
    # results carrying the pattern the tagger reads on the edited garment come first
    assert plain["preferred_tags"] == {} and set(edited["preferred_tags"]) == {"pattern"}
    carries = [r["attributes"].get("pattern") == edited["preferred_tags"]["pattern"] for r in edited["results"]]
    assert carries == sorted(carries, reverse=True) and carries[0]


def test_edit_answers_the_edited_garment_as_png(client, shots):
    reply = client.post("/edit", params={"detect": "false"}, data={"tags": json.dumps(other_pattern(shots["product"]))},
                        files={"image": ("shot.png", shots["product_bytes"], "image/png")})
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "image/png"
    assert reply.headers["x-edit-steps"].startswith("crop")
    edited = Image.open(io.BytesIO(reply.content))
    assert edited.format == "PNG" and edited.width > 8 and edited.height > 8
    original = images.load(shots["product_bytes"]).resize(edited.size)
    assert np.abs(np.asarray(edited.convert("RGB"), float) - np.asarray(original, float)).mean() > 1


def test_product_json_and_image_file(client, local, shots):
    product = shots["product"]
    reply = client.get(f"/products/{product.id}")
    assert reply.status_code == 200
    assert reply.json() == {"id": product.id, "title": product.title, "category": product.category,
                            "attributes": product.attributes, "image_url": f"/products/{product.id}/image"}
    image = client.get(reply.json()["image_url"])
    assert image.status_code == 200 and image.headers["content-type"].startswith("image/")
    assert image.content == Path(product.image).read_bytes()


def test_similar_is_the_nearest_indexed_vectors_without_the_product(client, local, shots):
    product_id = shots["product"].id
    reply = client.get(f"/products/{product_id}/similar", params={"k": 4})
    assert reply.status_code == 200
    results = reply.json()["results"]
    ids = np.array(local.catalog.ids())
    xb = local.index.vectors(ids)
    scores = xb @ xb[list(ids).index(product_id)]
    order = [i for i in ids[np.argsort(-scores, kind="stable")] if i != product_id][:4]
    assert [r["id"] for r in results] == [int(i) for i in order]
    assert [r["score"] for r in results] == pytest.approx(sorted(scores[np.isin(ids, order)])[::-1], abs=1e-4)


def test_concurrent_searches_all_get_the_same_answer(client, shots):
    def one(_):
        return post_search(client, shots["product_bytes"], {"detect": "false"}).json()["results"]

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one, range(16)))
    assert all([r["id"] for r in a] == [r["id"] for r in answers[0]] for a in answers)


@pytest.mark.parametrize("method, path, status, needle", [
    ("GET", "/products/999999", 404, "No product 999999"),
    ("GET", "/products/999999/image", 404, "No product 999999"),
    ("GET", "/products/999999/similar", 404, "No product 999999"),
    ("GET", "/products/99999999999999999999999", 422, "Path parameter product_id"),
    ("GET", "/products/abc", 422, "Path parameter product_id"),
    ("GET", "/products/1/similar?k=0", 422, "Query parameter k"),
    ("GET", "/nowhere", 404, "No such endpoint"),
    ("DELETE", "/products/1", 405, "not allowed"),
])
def test_bad_requests_are_json_sentences(client, method, path, status, needle):
    assert_error(client.request(method, path), status, needle)


def test_bad_uploads_get_4xx_never_500(client, shots):
    tiff = b"II*\x00" + bytes(200)
    svg = b"<svg xmlns='http://www.w3.org/2000/svg'><rect/></svg>"
    truncated = shots["product_bytes"][:300]
    assert_error(post_search(client, tiff), 415, "TIFF")
    assert_error(post_search(client, svg), 415, "SVG")
    assert_error(post_search(client, b"hello, not an image"), 415, "not a supported image")
    assert_error(post_search(client, truncated), 422, "truncated or corrupt")
    assert_error(post_search(client, b""), 422, "empty")
    assert_error(client.post("/search"), 422, "Form field image")
    assert_error(post_search(client, shots["product_bytes"], {"k": 0}), 422, "Query parameter k")
    assert_error(post_search(client, shots["product_bytes"], {"min_score": "nan"}), 422, "min_score")
    bomb = png(Image.new("1", (8000, 6000)))  # 48 Mpx in a few kB
    assert_error(post_search(client, bomb), 422, "pixel limit")


def test_unknown_tags_are_422_naming_the_valid_ones(client, shots):
    data = shots["product_bytes"]
    assert_error(post_search(client, data, tags={"sleeves": "long"}), 422, "valid attributes are", "sleeve_length")
    assert_error(post_search(client, data, tags={"fit": "baggy"}), 422, "valid values are", "tight, normal, loose")
    bad_json = client.post("/search", files={"image": ("q.png", data, "image/png")}, data={"tags": "{long"})
    assert_error(bad_json, 422, "not JSON")
    not_object = client.post("/search", files={"image": ("q.png", data, "image/png")}, data={"tags": '["fit"]'})
    assert_error(not_object, 422, "JSON object")
    deep = client.post("/search", files={"image": ("q.png", data, "image/png")}, data={"tags": "[" * 1500})
    assert_error(deep, 422, "nested too deep")
    assert_error(post_search(client, data, tags={"fit": "x" * 3000}), 422, "longer than")
    no_tags = client.post("/edit", files={"image": ("q.png", data, "image/png")}, data={"tags": "{}"})
    assert_error(no_tags, 422, "at least one tag")


def test_oversized_bodies_are_413(client, server):
    over = images.DEFAULT_MAX_BYTES + 1
    # the whole body over the limit: refused from its Content-Length, before it is read
    assert_error(post_search(client, b"\xff" * (over + 100_000)), 413, "byte limit")
    # the body under the body limit, the image part over the image limit
    assert_error(post_search(client, b"\x89PNG\r\n\x1a\n" + bytes(over - 8)), 413, "byte limit")
    # a chunked body (no Content-Length) is counted as it arrives
    head = (b'--abc\r\nContent-Disposition: form-data; name="image"; filename="q.png"\r\n'
            b"Content-Type: image/png\r\n\r\n")
    chunks = (head if n < 0 else b"x" * 1_000_000 for n in range(-1, 25))
    reply = client.post("/search", content=chunks,
                        headers={"content-type": "multipart/form-data; boundary=abc"})
    assert_error(reply, 413, "byte limit")


def test_no_file_path_leaves_the_server_and_traversal_finds_nothing(client, server, data_dir, shots):
    bodies = [post_search(client, shots["product_bytes"], {"detect": "false", "k": 10}).text,
              client.get(f"/products/{shots['product'].id}").text,
              client.get(f"/products/{shots['product'].id}/similar").text]
    for body in bodies:
        assert str(data_dir) not in body and "/demo/" not in body and ".png" not in body
        for url in re.findall(r'"image_url":"([^"]*)"', body):
            assert re.fullmatch(r"/products/\d+/image", url)
    for path in ["/products/..%2F..%2F..%2Fetc%2Fpasswd/image", "/products/%2Fetc%2Fpasswd",
                 "/products/1/..%2F..%2F..%2F..%2Fetc%2Fpasswd"]:
        reply = client.get(path)
        assert reply.status_code in (404, 422) and "root:" not in reply.text
    host, port = server.removeprefix("http://").split(":")  # raw request line: no client-side normalising
    with socket.create_connection((host, int(port)), timeout=30) as raw:
        raw.sendall(b"GET /products/1/image/../../../../../../etc/passwd HTTP/1.1\r\nHost: x\r\n"
                    b"Connection: close\r\n\r\n")
        answer = b""
        while chunk := raw.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 404") and b"root:" not in answer


def test_fuzzer_http_target_short_run_gets_no_5xx(tmp_path, server):
    command = [sys.executable, str(ROOT / "scripts" / "fuzz.py"), "--target", "http", "--url", server,
               "--count", "40", "--seed", "3", "--timeout", "60", "--save", str(tmp_path / "saved")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    counts = dict(re.findall(r"^\s+(ok|ImageError|crash|timeout|over-memory)\s+(\d+)$", done.stdout, re.M))
    assert done.returncode == 0, done.stdout + done.stderr
    assert int(counts["ok"]) > 0 and int(counts["ImageError"]) > 0  # some searched, some refused with a 4xx
    assert int(counts["ok"]) + int(counts["ImageError"]) == 40
    assert "/health after  200" in done.stdout


def test_openapi_docs_are_served(client):
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/search", "/edit", "/products/{product_id}", "/products/{product_id}/image",
            "/products/{product_id}/similar", "/health"} <= set(paths)


def test_a_key_file_locks_everything_but_health(tmp_path, data_dir, shots, server):
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    with running_server(["--api-key-file", str(key_file)], _env(data_dir), log=data_dir / "keyed.log") as url, \
            httpx.Client(base_url=url, timeout=120) as http:
        assert http.get("/health").status_code == 200
        product = f"/products/{shots['product'].id}"
        for headers in ({}, {"Authorization": "Bearer wrong-key-0123456789"}, {"Authorization": KEY},
                        {"Authorization": f"Bearer {KEY}x"}):
            reply = http.get(product, headers=headers)
            assert_error(reply, 401, "API key")
            assert reply.headers["www-authenticate"] == "Bearer"
        assert_error(http.get("/docs"), 401)
        assert_error(post_search(http, shots["product_bytes"]), 401)
        good = {"Authorization": f"Bearer {KEY}"}
        assert http.get(product, headers=good).json()["id"] == shots["product"].id
        reply = post_search(http, shots["product_bytes"], {"detect": "false"}, headers=good)
        assert reply.status_code == 200 and reply.json()["results"][0]["id"] == shots["product"].id


@pytest.mark.parametrize("args, message", [
    (["--host", "0.0.0.0"], "--api-key-file"),
    (["--host", "192.168.1.20"], "--api-key-file"),
    (["--host", "127.0.0.1", "--api-key-file", "{tmp}/missing"], "Cannot read the API key file"),
    (["--host", "0.0.0.0", "--api-key-file", "{tmp}/short"], "at least 16 characters"),
])
def test_serve_refuses_to_start_open_to_strangers(tmp_path, capsys, args, message):
    (tmp_path / "short").write_text("abc\n")
    assert main(["serve", *[a.format(tmp=tmp_path) for a in args]]) == 2  # before any model loads
    err = capsys.readouterr().err.strip()
    assert err.startswith("numbpie: error:") and message in err and len(err.splitlines()) == 1
