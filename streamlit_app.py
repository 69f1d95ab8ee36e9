"""numbpie demo page. UI only: widgets in, `Pipeline` calls, results out (run: streamlit run streamlit_app.py)."""

from __future__ import annotations

import gc
import hashlib
import html
import io
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import streamlit as st

from numbpie import images
from numbpie.app import assemble, demo
from numbpie.app.pipeline import Pipeline, Result
from numbpie.attributes import ATTRIBUTES, CATEGORIES, SHAPE_ATTRIBUTES, applies_to
from numbpie.errors import UserError
from numbpie.visual import detection_labels, draw_boxes, letterbox, tag_index

STAGES = {"render": "Rendering the synthetic demo catalog", "embed": "Embedding and indexing it"}
UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "gif"]  # what numbpie.images.load reads
UPLOAD_MAX_BYTES = 20_000_000
EDIT_ATTRIBUTES = (*SHAPE_ATTRIBUTES, "pattern")
MEMO_SIZE = 12  # prepared queries (detections, crop, vector) kept per session
CARD_PX = (240, 240)  # every result picture is letterboxed to this, so the cards line up
CROP_PX = (120, 160)  # the garment searched for and each GAN step, whatever its shape: results stay in view
CLAMP = "display:-webkit-box;-webkit-box-orient:vertical;overflow:hidden;line-height:1.35;"


@dataclass
class Settings:
    """What the sidebar asks for."""

    catalog: Path | None
    use_detector: bool
    threshold: float
    k: int
    min_score: float
    category: str | None


def kept_for_good(resource):
    """`resource`, with every object alive now moved out of the garbage collector's sight (gc.freeze).

    After every script run Streamlit collects all generations: with the models loaded, ~680k objects,
    ~0.35 s holding the GIL on 2 busy cores, while the run's last elements and its pictures wait to be
    sent. Models and catalogs live as long as the server: they need not be scanned again.
    """
    gc.collect()
    gc.freeze()
    return resource


def keep_tensorflow_warm() -> None:
    """Stop Streamlit calling keras.backend.clear_session after every script run (the page builds no Keras model).

    Streamlit does it for scripts that build a Keras model each run; it also empties TensorFlow's
    kernel cache, so the detector rebuilt its kernels for every new photo (6 ms -> ~180 ms on 2
    busy cores). The rest of that clean-up (closing pyplot figures) is kept.
    """
    from streamlit.runtime.scriptrunner import script_runner

    def close_pyplot_figures() -> None:
        if "matplotlib.pyplot" in sys.modules:
            sys.modules["matplotlib.pyplot"].close("all")

    if hasattr(script_runner, "_clean_problem_modules"):
        script_runner._clean_problem_modules = close_pyplot_figures


@st.cache_resource(show_spinner="Loading models…")
def load_models() -> assemble.Models:
    """Embedder, detector, editor and tagger, shared by every session (each is thread-safe)."""
    keep_tensorflow_warm()
    return kept_for_good(assemble.default_models())


@st.cache_resource(show_spinner="Opening the catalog…")
def load_pipeline(folder: str) -> Pipeline:
    pipeline = assemble.open_pipeline(folder, models=load_models())
    pipeline.warm_up()
    return kept_for_good(pipeline)


@st.cache_data(max_entries=2048, show_spinner=False)
def card_picture(path: str) -> bytes:
    """A product picture letterboxed to CARD_PX, as JPEG bytes."""
    out = io.BytesIO()
    letterbox(images.load(path), CARD_PX).save(out, "JPEG", quality=90)
    return out.getvalue()


def remembered(key, compute):
    """`compute()` once per `key` in this session (the latest MEMO_SIZE kept); returns (value, computed now)."""
    memo = st.session_state.setdefault("memo", {})
    fresh = key not in memo
    value = compute() if fresh else memo.pop(key)
    memo[key] = value  # the most recently used last
    for old in list(memo)[:-MEMO_SIZE]:
        del memo[old]
    return value, fresh


def clamped(text: str, lines: int, style: str = "") -> str:
    """HTML for `text` cut to `lines` lines (the full text on hover), always `lines` lines tall."""
    safe = html.escape(text)
    return (f'<div title="{safe}" style="{CLAMP}-webkit-line-clamp:{lines};height:{1.35 * lines}em;{style}">'
            f"{safe}</div>")


def demo_catalog_ui() -> Path:
    """Build the demo catalog on first run with a progress bar; instant once cached on disk."""
    bar = st.empty()

    def report(stage: str, done: int, total: int) -> None:
        bar.progress(done / max(total, 1), text=f"{STAGES[stage]}… {done}/{total} (first run only)")

    folder = demo.ensure_demo(load_models().embedder, progress=report)
    bar.empty()
    return folder


def sidebar_ui(detector) -> Settings:
    has_detector = detector is not None
    with st.sidebar:
        st.header("Settings")
        source = st.radio("Catalog", ["Demo catalog (synthetic)", "A folder built with `numbpie index`"],
                          key="catalog_source")
        folder = None
        if source.startswith("A folder"):
            typed = st.text_input("Catalog folder", placeholder="catalogs/my-shop", key="catalog_folder",
                                  help="Build one with: python -m numbpie index SOURCE --catalog FOLDER")
            folder = Path(typed).expanduser() if typed.strip() else None
        use_detector = st.toggle("Detect the garment", value=has_detector, disabled=not has_detector,
                                 help=None if has_detector else "No detector weights are installed.")
        threshold = st.slider("Detector threshold", 0.05, 0.95, float(getattr(detector, "threshold", 0.4)), 0.05,
                              disabled=not use_detector)
        k = st.slider("Results (k)", 1, 20, 5)
        min_score = st.slider("Minimum score", 0.0, 1.0, 0.0, 0.01)
        category = st.selectbox("Category", ["all", *CATEGORIES])
    return Settings(folder, use_detector and has_detector, threshold, k, min_score,
                    None if category == "all" else category)


def set_query(name: str, source: bytes | int) -> None:
    """A new query: a photo's bytes or a catalog product's id. Its widgets start fresh; the examples fold away."""
    st.session_state.query = (name, source)
    st.session_state.query_n = st.session_state.get("query_n", 0) + 1  # in the keys of this query's widgets
    st.session_state.examples_open = False


def query_ui(examples: list[Path]) -> tuple[str, bytes | int] | None:
    """Upload, camera or example gallery; the chosen query persists in session state."""
    upload_tab, camera_tab = st.tabs(["Upload a photo", "Camera"])
    with upload_tab:
        upload = st.file_uploader("Photo of a garment (JPG, PNG, WEBP, BMP or GIF)", type=UPLOAD_TYPES, key="upload")
        if upload is not None and st.session_state.get("query_source") != upload.file_id:
            st.session_state.query_source = upload.file_id
            set_query(upload.name, upload.getvalue())
    with camera_tab:
        shot = st.camera_input("Take a photo", key="camera")
        if shot is not None and st.session_state.get("query_source") != shot.file_id:
            st.session_state.query_source = shot.file_id
            set_query("camera photo", shot.getvalue())
    if examples:
        examples_ui(examples)
    return st.session_state.get("query")


def examples_ui(examples: list[Path]) -> None:
    """One row of example photos; open until one is chosen, then folded so the results stay in view."""
    st.session_state.setdefault("examples_open", True)
    gallery = st.expander(f"Examples ({len(examples)})", key="examples_open", on_change="rerun")
    if not gallery.open:
        return
    with gallery:
        for n, (column, path) in enumerate(zip(st.columns(len(examples)), examples, strict=True)):
            with column:
                st.image(str(path), width="stretch")
                st.button("Use this", key=f"example-{n}", on_click=set_query, args=(path.name, path.read_bytes()))


def photo_ui(name: str, data: bytes):
    """The query decoded; an ImageError names the file."""
    try:
        return images.load(data, max_bytes=UPLOAD_MAX_BYTES)
    except images.ImageError as error:
        raise images.ImageError(f"{name} cannot be used: {error}") from None


def garment_ui(detections, n: int) -> int:
    """Which detected garment to search for (0 = the best one)."""
    if len(detections) < 2:
        return 0
    labels = detection_labels(detections)
    choice = st.radio("Several garments found: search for", labels, horizontal=True, key=f"garment-{n}")
    return labels.index(choice) if choice in labels else 0


def crop_ui(size: tuple[int, int], n: int) -> tuple[int, int, int, int] | None:
    """Optional hand-drawn crop, as two range sliders in pixels."""
    with st.expander("Adjust the crop by hand"):
        if not st.checkbox("Use my crop", key=f"manual_crop-{n}"):
            return None
        x0, x1 = st.slider("Left – right", 0, size[0], (0, size[0]), key=f"crop_x-{n}")
        y0, y1 = st.slider("Top – bottom", 0, size[1], (0, size[1]), key=f"crop_y-{n}")
        return x0, y0, x1, y1


def card_ui(match, key: str) -> None:
    """One result: picture, title (two lines at most), attributes, score and 'Search with this'."""
    product = match.product
    with st.container(border=True):
        st.image(card_picture(product.image), width="stretch")
        st.markdown(clamped(product.title, 2, "font-weight:600;"), unsafe_allow_html=True)
        details = " · ".join(str(v) for v in product.attributes.values()) or product.category
        st.markdown(clamped(details, 1, "font-size:0.8rem;opacity:0.65;"), unsafe_allow_html=True)
        st.metric("score", f"{match.score:.3f}", label_visibility="collapsed")
        st.button("Search with this", key=f"{key}-{product.id}", type="tertiary", on_click=set_query,
                  args=(product.title, product.id))


def results_ui(matches, key: str, columns: int = 5) -> None:
    """Result cards in rows of `columns`."""
    if not matches:
        st.warning("No product passes the filters; lower the minimum score or widen the category.")
        return
    for start in range(0, len(matches), columns):
        for column, match in zip(st.columns(columns), matches[start:start + columns], strict=False):
            with column:
                card_ui(match, key)


def tags_ui(category: str, current: dict, garment: str) -> tuple[dict, bool]:
    """Style controls, pre-set to the garment's `current` tags; returns changed tags and the model view.

    The keys name the garment, so another garment gets new controls (a browser keeps a control's
    old choice for as long as its key is the same).
    """
    names = [a for a in EDIT_ATTRIBUTES if applies_to(a, category)]
    columns = st.columns(len(names) + 1)
    tags = {}
    for column, name in zip(columns, names, strict=False):
        options = ["keep", *ATTRIBUTES[name]]
        choice = column.selectbox(name.replace("_", " "), options, index=tag_index(options, current.get(name)),
                                  key=f"tag-{name}-{garment}")
        if choice != "keep" and choice != current.get(name):
            tags[name] = choice
    model_view = columns[-1].checkbox("model view", key=f"tag-model-{garment}", help="Show the garment worn by a model.")
    return tags, model_view


def current_tags_ui(pipeline: Pipeline, query: Result, key) -> dict:
    """The garment's tags from the pipeline's tagger, if one is installed (else nothing is pre-selected)."""
    if pipeline.tagger is None:
        st.caption("No attribute tagger is installed, so every control starts at “keep”.")
        return {}
    found, _ = remembered(("tags", key), lambda: pipeline.tag(query.crop))
    st.caption("Detected: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in found.items()))
    return found


def edit_ui(pipeline: Pipeline, settings: Settings, query: Result, result: Result, key, n: int) -> None:
    """Style controls and 'Generate & search'; the edit's results stay while its tags and the garment do."""
    st.subheader("Redesign it")
    current = current_tags_ui(pipeline, query, key)
    if pipeline.editor is None:
        st.info("Style editing needs the GAN editor weights (StarGAN, CycleGAN, pix2pix), which are not "
                "installed in this build; searching still works.")
        return
    fallback = query.product.category if query.product is not None else settings.category
    category = current.get("category") or fallback or "dress"
    garment = hashlib.sha1(repr((n, key)).encode()).hexdigest()[:10]
    tags, model_view = tags_ui(category, current, garment)
    edit_key = ("edit", key, tuple(sorted(tags.items())), model_view)
    clicked = st.button("Generate & search", type="primary", disabled=not (tags or model_view), key="generate")
    if not clicked and st.session_state.get("edit_shown") != edit_key:
        return
    prepared, fresh = remembered(edit_key, lambda: pipeline.prepare(query.crop, detect=False, tags=tags,
                                                                    model_view=model_view, current=current))
    st.session_state.edit_shown = edit_key
    edited = pipeline.rank(prepared, settings.k, min_score=settings.min_score, category=settings.category)
    st.caption("GAN steps: " + " → ".join(name for name, _ in edited.edit.steps))
    steps, compared = st.columns([1, 5])  # laid out as the query above, so one screen holds the edit
    with steps:
        for name, picture in edited.edit.steps:
            st.image(letterbox(picture, CROP_PX), caption=name, width=CROP_PX[0])
    with compared:
        st.markdown("**Original top 5**")
        results_ui(result.matches[:5], "before")
        st.markdown("**After the edit: top 5**" + preferred_text(edited.prefer))
        results_ui(edited.matches[:5], "after")
    timings_ui(edited.timings if fresh else searched_only(edited.timings), "Time per step (edit + search)")


def preferred_text(prefer: dict[str, str]) -> str:
    """' (sleeve length short first)': which tags the edited search put first, as the tagger read the edit."""
    if not prefer:
        return ""
    return " (" + ", ".join(f"{name.replace('_', ' ')} {value}" for name, value in prefer.items()) + " first)"


def searched_only(timings: dict[str, float]) -> dict[str, float]:
    return {step: t for step, t in timings.items() if step in ("search", "lookup")}


def timings_ui(timings: dict[str, float], title: str = "Time per step") -> None:
    with st.sidebar:
        st.subheader(title)
        total = sum(timings.values())
        st.table({"step": [*timings, "total"], "ms": [f"{t * 1000:,.1f}" for t in [*timings.values(), total]]})


def rank(pipeline: Pipeline, query: Result, settings: Settings) -> Result:
    return pipeline.rank(query, settings.k, min_score=settings.min_score, category=settings.category)


def photo_query_ui(pipeline: Pipeline, folder: str, name: str, data: bytes, settings: Settings, n: int):
    """The photo's prepared query (detections, crop, vector), kept while the photo, crop and detector settings are."""
    digest = hashlib.sha1(data).hexdigest()
    photo, _ = remembered(("photo", digest), lambda: photo_ui(name, data))
    box = crop_ui(photo.size, n)
    detect = settings.use_detector and box is None
    key = (folder, digest, box, detect, settings.threshold if detect else None)
    query, fresh = remembered(key, lambda: pipeline.prepare(photo, box=box, detect=detect,
                                                            threshold=settings.threshold))
    chosen = garment_ui(query.detections, n)
    if chosen:
        detections, garment_box = query.detections, query.detections[chosen].box
        key = (folder, digest, garment_box)
        query, fresh = remembered(key, lambda: replace(pipeline.prepare(photo, box=garment_box),
                                                       detections=detections))
    return query, key, fresh


def query_picture_ui(query: Result, name: str) -> None:
    """The query as the shopper sees it: the photo with its boxes and the garment searched for, or the product."""
    if query.product is not None:
        st.image(card_picture(query.product.image), caption=f"{query.product.title} (catalog product)",
                 width="stretch")
        st.caption("Searched with its indexed vector.")
        return
    boxes = [d.box for d in query.detections] or ([query.box] if query.box else [])
    st.image(draw_boxes(query.image, boxes, detection_labels(query.detections)), caption=name, width="stretch")
    st.image(letterbox(query.crop, CROP_PX), caption="searched for", width=CROP_PX[0])


def page(loaded: assemble.Models) -> None:
    settings = sidebar_ui(loaded.detector)
    folder = str(settings.catalog or demo_catalog_ui())
    pipeline = load_pipeline(folder)
    chosen = query_ui(demo.examples() if settings.catalog is None else [])
    if chosen is None:
        st.info("Upload a photo, take one, or pick an example to start.")
        return
    name, source = chosen
    n = st.session_state.get("query_n", 0)
    if isinstance(source, int):  # a catalog product: its picture and its vector are already known
        key = (folder, "product", source)
        query, fresh = remembered(key, lambda: pipeline.product_query(source))
    else:
        query, key, fresh = photo_query_ui(pipeline, folder, name, source, settings, n)
    result = rank(pipeline, query, settings)
    left, right = st.columns([1, 5])
    with left:
        query_picture_ui(query, name)
    with right:
        st.subheader(f"Top {settings.k} similar products")
        results_ui(result.matches, "result")
    if fresh:
        timings_ui(result.timings)
    else:
        timings_ui(searched_only(result.timings), "Time per step (the query's vector reused)")
    edit_ui(pipeline, settings, query, result, key, n)


def main() -> None:
    st.set_page_config(page_title="numbpie — fashion visual search", page_icon="👗", layout="wide")
    st.title("numbpie")
    st.caption("Show a garment, find similar products, then redesign it and search again.")
    loaded = load_models()
    if loaded.notes:  # what this build runs without, in one box
        st.warning("\n".join(f"- {note}" for note in loaded.notes))
    try:
        page(loaded)
    except UserError as error:  # the one place the page turns a user's mistake into a sentence
        st.error(str(error))


main()
