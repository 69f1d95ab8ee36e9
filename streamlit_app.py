"""numbpie demo page. UI only: widgets in, `Pipeline` calls, results out (run: streamlit run streamlit_app.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from numbpie import demo, images, models
from numbpie.attributes import ATTRIBUTES, CATEGORIES, SHAPE_ATTRIBUTES
from numbpie.pipeline import Pipeline
from numbpie.visual import draw_boxes

STAGES = {"render": "Rendering the synthetic demo catalog", "embed": "Embedding and indexing it"}
UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp"]


@dataclass
class Settings:
    """What the sidebar asks for."""

    catalog: Path | None
    use_detector: bool
    threshold: float
    k: int
    min_score: float
    category: str | None


@st.cache_resource(show_spinner="Loading models…")
def load_models() -> models.Models:
    """Embedder, detector and editor, shared by every session (each is thread-safe)."""
    return models.load_default()


@st.cache_resource(show_spinner="Opening the catalog…")
def load_pipeline(folder: str) -> Pipeline:
    loaded = load_models()
    return Pipeline.open(folder, embedder=loaded.embedder, detector=loaded.detector, editor=loaded.editor)


def demo_catalog_ui() -> Path:
    """Build the demo catalog on first run with a progress bar; instant once cached on disk."""
    bar = st.empty()

    def report(stage: str, done: int, total: int) -> None:
        bar.progress(done / max(total, 1), text=f"{STAGES[stage]}… {done}/{total} (first run only)")

    folder = demo.ensure_demo(load_models().embedder, progress=report)
    bar.empty()
    return folder


def sidebar_ui(has_detector: bool) -> Settings:
    with st.sidebar:
        st.header("Settings")
        source = st.radio("Catalog", ["Demo catalog (synthetic)", "A folder built with `numbpie index`"])
        folder = None
        if source.startswith("A folder"):
            typed = st.text_input("Catalog folder", placeholder="catalogs/my-shop")
            folder = Path(typed) if typed else None
        use_detector = st.toggle("Detect the garment", value=has_detector, disabled=not has_detector,
                                 help=None if has_detector else "No detector weights are installed.")
        threshold = st.slider("Detector threshold", 0.05, 0.95, 0.4, 0.05, disabled=not use_detector)
        k = st.slider("Results (k)", 1, 20, 5)
        min_score = st.slider("Minimum score", 0.0, 1.0, 0.0, 0.01)
        category = st.selectbox("Category", ["all", *CATEGORIES])
    return Settings(folder, use_detector, threshold, k, min_score, None if category == "all" else category)


def set_query(name: str, data: bytes) -> None:
    st.session_state.query = (name, data)
    st.session_state.pop("box", None)


def query_ui(examples: list[Path]) -> tuple[str, bytes] | None:
    """Upload, camera or example gallery; the chosen query persists in session state."""
    upload_tab, camera_tab, example_tab = st.tabs(["Upload a photo", "Camera", "Examples"])
    with upload_tab:
        upload = st.file_uploader("Photo of a garment", type=UPLOAD_TYPES, key="upload")
        if upload is not None and st.session_state.get("query_source") != upload.file_id:
            st.session_state.query_source = upload.file_id
            set_query(upload.name, upload.getvalue())
    with camera_tab:
        shot = st.camera_input("Take a photo", key="camera")
        if shot is not None and st.session_state.get("query_source") != shot.file_id:
            st.session_state.query_source = shot.file_id
            set_query("camera photo", shot.getvalue())
    with example_tab:
        columns = st.columns(4)
        for n, path in enumerate(examples):
            with columns[n % 4]:
                st.image(str(path), width="stretch")
                st.button("Use this", key=f"example-{n}", on_click=set_query,
                          args=(path.name, path.read_bytes()))
    return st.session_state.get("query")


def crop_ui(size: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """Optional hand-drawn crop, as two range sliders in pixels."""
    with st.expander("Adjust the crop by hand"):
        if not st.checkbox("Use my crop", key="manual_crop"):
            return None
        x0, x1 = st.slider("Left – right", 0, size[0], (0, size[0]), key="crop_x")
        y0, y1 = st.slider("Top – bottom", 0, size[1], (0, size[1]), key="crop_y")
        return x0, y0, x1, y1


def results_ui(matches, key: str) -> None:
    """Result cards: image, title, attributes, score, and 'Search with this'."""
    if not matches:
        st.warning("No product passes the filters; lower the minimum score or widen the category.")
        return
    columns = st.columns(min(5, len(matches)))
    for n, match in enumerate(matches):
        product = match.product
        with columns[n % len(columns)], st.container(border=True):
            st.image(product.image, width="stretch")
            st.markdown(f"**{product.title}**")
            st.caption(" · ".join(str(v) for v in product.attributes.values()) or product.category)
            st.metric("score", f"{match.score:.3f}", label_visibility="collapsed")
            st.button("Search with this", key=f"{key}-{product.id}", on_click=set_query,
                      args=(Path(product.image).name, Path(product.image).read_bytes()))


def tags_ui(category: str) -> tuple[dict, bool]:
    """Style controls; returns the requested tags and whether to render the model view."""
    names = [a for a in SHAPE_ATTRIBUTES if a != "length" or category == "dress"] + ["pattern"]
    columns = st.columns(len(names) + 1)
    tags = {}
    for column, name in zip(columns, names, strict=False):
        choice = column.selectbox(name.replace("_", " "), ["keep", *ATTRIBUTES[name]], key=f"tag-{name}")
        if choice != "keep":
            tags[name] = choice
    model_view = columns[-1].checkbox("model view", key="tag-model")
    return tags, model_view


def edit_ui(pipeline: Pipeline, query: bytes, settings: Settings, box, base) -> None:
    st.subheader("Redesign it")
    if pipeline.editor is None:
        st.info("Style editing needs the GAN editor weights, which are not installed in this build.")
        return
    tags, model_view = tags_ui(settings.category or "dress")
    if not st.button("Generate & search", type="primary", disabled=not (tags or model_view)):
        return
    edited = pipeline.search(query, settings.k, tags=tags, model_view=model_view, box=box,
                             detect=settings.use_detector, threshold=settings.threshold,
                             min_score=settings.min_score, category=settings.category)
    steps = st.columns(len(edited.edit.steps))
    for column, (name, picture) in zip(steps, edited.edit.steps, strict=True):
        column.image(picture, caption=name, width="stretch")
    before, after = st.columns(2)
    with before:
        st.markdown("**Before**")
        results_ui(base.matches, "before")
    with after:
        st.markdown("**After the edit**")
        results_ui(edited.matches, "after")
    timings_ui(edited.timings)


def timings_ui(timings: dict[str, float]) -> None:
    with st.sidebar:
        st.subheader("Time per step")
        st.table({"step": list(timings), "ms": [round(t * 1000, 1) for t in timings.values()]})


def main() -> None:
    st.set_page_config(page_title="numbpie — fashion visual search", page_icon="👗", layout="wide")
    st.title("numbpie")
    st.caption("Show a garment, find similar products, then redesign it and search again.")
    loaded = load_models()
    for note in loaded.notes:
        st.warning(note)
    settings = sidebar_ui(loaded.detector is not None)
    try:
        folder = settings.catalog or demo_catalog_ui()
        pipeline = load_pipeline(str(folder))
    except (FileNotFoundError, ValueError) as error:
        st.error(str(error))
        return
    chosen = query_ui(demo.examples() if settings.catalog is None else [])
    if chosen is None:
        st.info("Upload a photo, take one, or pick an example to start.")
        return
    name, data = chosen
    try:
        photo = images.load(data)
    except images.ImageError as error:
        st.error(f"{name}: {error}")
        return
    box = crop_ui(photo.size)
    result = pipeline.search(photo, settings.k, box=box, detect=settings.use_detector,
                             threshold=settings.threshold, min_score=settings.min_score,
                             category=settings.category)
    left, right = st.columns([1, 3])
    with left:
        shown = [d.box for d in result.detections] or ([result.box] if result.box else [])
        st.image(draw_boxes(photo, shown), caption=name, width="stretch")
        st.image(result.crop, caption="searched for", width=160)
    with right:
        st.subheader(f"Top {settings.k} similar products")
        results_ui(result.matches, "result")
    timings_ui(result.timings)
    edit_ui(pipeline, photo, settings, box, result)


main()
