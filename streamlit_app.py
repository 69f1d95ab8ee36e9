"""numbpie demo page. UI only: widgets in, `Pipeline` calls, results out (run: streamlit run streamlit_app.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from numbpie import images
from numbpie.app import assemble, demo
from numbpie.app.pipeline import Pipeline
from numbpie.attributes import ATTRIBUTES, CATEGORIES, SHAPE_ATTRIBUTES, applies_to
from numbpie.errors import UserError
from numbpie.visual import detection_labels, draw_boxes, tag_index

STAGES = {"render": "Rendering the synthetic demo catalog", "embed": "Embedding and indexing it"}
UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp"]
UPLOAD_MAX_BYTES = 20_000_000
EDIT_ATTRIBUTES = (*SHAPE_ATTRIBUTES, "pattern")
EDIT_STEPS = "crop → shape → pattern → model view"


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
def load_models() -> assemble.Models:
    """Embedder, detector, editor and tagger, shared by every session (each is thread-safe)."""
    return assemble.default_models()


@st.cache_resource(show_spinner="Opening the catalog…")
def load_pipeline(folder: str) -> Pipeline:
    return assemble.open_pipeline(folder, models=load_models())


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


def set_query(name: str, data: bytes) -> None:
    st.session_state.query = (name, data)
    # A new garment starts with its own crop, choice and tags.
    tag_keys = [key for key in st.session_state if str(key).startswith("tag-")]
    for key in ["manual_crop", "garment", "crop_x", "crop_y", *tag_keys]:
        st.session_state.pop(key, None)


def query_ui(examples: list[Path]) -> tuple[str, bytes] | None:
    """Upload, camera or example gallery; the chosen query persists in session state."""
    upload_tab, camera_tab, example_tab = st.tabs(["Upload a photo", "Camera", "Examples"])
    with upload_tab:
        upload = st.file_uploader("Photo of a garment (JPG, PNG or WEBP)", type=UPLOAD_TYPES, key="upload")
        if upload is not None and st.session_state.get("query_source") != upload.file_id:
            st.session_state.query_source = upload.file_id
            set_query(upload.name, upload.getvalue())
    with camera_tab:
        shot = st.camera_input("Take a photo", key="camera")
        if shot is not None and st.session_state.get("query_source") != shot.file_id:
            st.session_state.query_source = shot.file_id
            set_query("camera photo", shot.getvalue())
    with example_tab:
        if not examples:
            st.caption("Examples come with the demo catalog.")
        columns = st.columns(4)
        for n, path in enumerate(examples):
            with columns[n % 4]:
                st.image(str(path), width="stretch")
                st.button("Use this", key=f"example-{n}", on_click=set_query,
                          args=(path.name, path.read_bytes()))
    return st.session_state.get("query")


def photo_ui(name: str, data: bytes):
    """The query decoded; an ImageError names the file."""
    try:
        return images.load(data, max_bytes=UPLOAD_MAX_BYTES)
    except images.ImageError as error:
        raise images.ImageError(f"{name} cannot be used: {error}") from None


def garment_ui(detections) -> int:
    """Which detected garment to search for (0 = the best one)."""
    if len(detections) < 2:
        return 0
    labels = detection_labels(detections)
    choice = st.radio("Several garments found: search for", labels, horizontal=True, key="garment")
    return labels.index(choice) if choice in labels else 0


def crop_ui(size: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """Optional hand-drawn crop, as two range sliders in pixels."""
    with st.expander("Adjust the crop by hand"):
        if not st.checkbox("Use my crop", key="manual_crop"):
            return None
        x0, x1 = st.slider("Left – right", 0, size[0], (0, size[0]), key="crop_x")
        y0, y1 = st.slider("Top – bottom", 0, size[1], (0, size[1]), key="crop_y")
        return x0, y0, x1, y1


def results_ui(matches, key: str, columns: int = 5) -> None:
    """Result cards: image, title, attributes, score, and 'Search with this'."""
    if not matches:
        st.warning("No product passes the filters; lower the minimum score or widen the category.")
        return
    for start in range(0, len(matches), columns):
        row = st.columns(columns)
        for column, match in zip(row, matches[start:start + columns], strict=False):
            product = match.product
            with column, st.container(border=True):
                st.image(product.image, width="stretch")
                st.markdown(f"**{product.title}**")
                st.caption(" · ".join(str(v) for v in product.attributes.values()) or product.category)
                st.metric("score", f"{match.score:.3f}", label_visibility="collapsed")
                st.button("Search with this", key=f"{key}-{product.id}", on_click=set_query,
                          args=(Path(product.image).name, Path(product.image).read_bytes()))


def tags_ui(category: str, current: dict) -> tuple[dict, bool]:
    """Style controls, pre-set to the garment's `current` tags; returns changed tags and the model view."""
    names = [a for a in EDIT_ATTRIBUTES if applies_to(a, category)]
    columns = st.columns(len(names) + 1)
    tags = {}
    for column, name in zip(columns, names, strict=False):
        options = ["keep", *ATTRIBUTES[name]]
        choice = column.selectbox(name.replace("_", " "), options, index=tag_index(options, current.get(name)),
                                  key=f"tag-{name}")
        if choice != "keep" and choice != current.get(name):
            tags[name] = choice
    model_view = columns[-1].checkbox("model view", key="tag-model", help="Show the garment worn by a model.")
    return tags, model_view


def current_tags_ui(pipeline: Pipeline, crop) -> dict:
    """The garment's tags from the pipeline's tagger, if one is installed (else nothing is pre-selected)."""
    if pipeline.tagger is None:
        st.caption("No attribute tagger is installed, so every control starts at “keep”.")
        return {}
    found = pipeline.tag(crop)
    st.caption("Detected: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in found.items()))
    return found


def edit_ui(pipeline: Pipeline, photo, settings: Settings, box, base) -> None:
    st.subheader("Redesign it")
    current = current_tags_ui(pipeline, base.crop)
    if pipeline.editor is None:
        st.info("Style editing needs the GAN editor weights (StarGAN, CycleGAN, pix2pix), which are not "
                "installed in this build; searching still works.")
        return
    category = current.get("category") or settings.category or "dress"
    tags, model_view = tags_ui(category, current)
    if not st.button("Generate & search", type="primary", disabled=not (tags or model_view), key="generate"):
        return
    edited = pipeline.search(photo, settings.k, tags=tags, model_view=model_view, current=current, box=base.box,
                             detect=settings.use_detector, threshold=settings.threshold,
                             min_score=settings.min_score, category=settings.category)
    st.caption(f"GAN steps ({EDIT_STEPS}):")
    steps = st.columns(max(4, len(edited.edit.steps)))
    for column, (name, picture) in zip(steps, edited.edit.steps, strict=False):
        column.image(picture, caption=name, width=180)
    before, after = st.columns(2)
    with before:
        st.markdown("**Original top 5**")
        results_ui(base.matches[:5], "before", columns=3)
    with after:
        st.markdown("**After the edit: top 5**")
        results_ui(edited.matches[:5], "after", columns=3)
    timings_ui(edited.timings, "Time per step (edit + search)")


def timings_ui(timings: dict[str, float], title: str = "Time per step") -> None:
    with st.sidebar:
        st.subheader(title)
        total = sum(timings.values())
        st.table({"step": [*timings, "total"], "ms": [f"{t * 1000:,.1f}" for t in [*timings.values(), total]]})


def search_ui(pipeline: Pipeline, photo, settings: Settings, box):
    """The query's Result, with the user's garment choice applied."""
    query = dict(detect=settings.use_detector, threshold=settings.threshold,
                 min_score=settings.min_score, category=settings.category)
    result = pipeline.search(photo, settings.k, box=box, **query)
    chosen = garment_ui(result.detections) if box is None else 0
    if chosen:
        detections = result.detections
        result = pipeline.search(photo, settings.k, box=detections[chosen].box, **query)
        result.detections = detections
    return result


def page(loaded: assemble.Models) -> None:
    settings = sidebar_ui(loaded.detector)
    folder = settings.catalog or demo_catalog_ui()
    pipeline = load_pipeline(str(folder))
    chosen = query_ui(demo.examples() if settings.catalog is None else [])
    if chosen is None:
        st.info("Upload a photo, take one, or pick an example to start.")
        return
    name, data = chosen
    photo = photo_ui(name, data)
    box = crop_ui(photo.size)
    result = search_ui(pipeline, photo, settings, box)
    left, right = st.columns([1, 3])
    with left:
        boxes = [d.box for d in result.detections] or ([result.box] if result.box else [])
        st.image(draw_boxes(photo, boxes, detection_labels(result.detections)), caption=name, width="stretch")
        st.image(result.crop, caption="searched for", width=160)
    with right:
        st.subheader(f"Top {settings.k} similar products")
        results_ui(result.matches, "result")
    timings_ui(result.timings)
    edit_ui(pipeline, photo, settings, result.box, result)


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
