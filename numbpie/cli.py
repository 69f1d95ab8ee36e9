"""`python -m numbpie`: thin commands over the library (parse, build, run)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from tqdm import tqdm

import detector
import gan
from detector.evaluate import evaluate as evaluate_detector
from numbpie import catalog as catalogs
from numbpie import embedder as embedders
from numbpie import images
from numbpie import tagger as taggers
from numbpie.app import assemble, threads
from numbpie.app.indexer import index_catalog, open_catalog, require_catalog
from numbpie.errors import CatalogError, OptionError, UserError, WeightsError
from numbpie.evaluation import edits
from numbpie.evaluation.inshop import evaluate_inshop
from numbpie.evaluation.retrieval import CROPS, evaluate_retrieval
from numbpie.evaluation.tagger import evaluate_tagger
from numbpie.index import DEFAULT_FACTORY, Index
from numbpie.synth import cli as synth_cli

__all__ = ["main"]

PRECISION_CHOICES = ["auto", *embedders.PRECISIONS]
PRECISION_HELP = "the embedder's: auto is bf16 on CPUs with AVX512-BF16 or AMX, else fp32; fp32 forces it"


def _progress_bar(desc: str):
    """A `progress(done, total)` callback drawing a tqdm bar on stderr."""
    bar = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc=desc, unit="img")
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update


def cmd_index(args) -> int:
    if args.ray and args.source is None and Path(args.ray).exists():
        raise OptionError(f"--ray took {args.ray} for a cluster address; put SOURCE before --ray, or write --ray=ADDRESS.")
    folder = Path(args.catalog)
    name = args.embedder
    if name is None and not args.rebuild and (folder / "index.json").exists():
        name = Index.read_manifest(folder)["embedder"]["name"]  # extend with what built it
    threads.configure()  # the product's one thread policy, as open_pipeline applies it for search
    embedder = embedders.load(name, precision=args.precision)  # fail on a bad name before touching the catalog
    rows = []
    if args.source:
        source = Path(args.source)
        if source.suffix.lower() == ".csv":
            rows = catalogs.csv_rows(source, image_column=args.image_column)
        else:
            rows = catalogs.folder_rows(source)
    elif not len(open_catalog(folder)):
        raise CatalogError(f"{folder} has no catalog yet; give a SOURCE folder or CSV to import.")
    options = {"factory": args.factory, "rebuild": args.rebuild, "checkpoint_every": args.checkpoint_every,
               "progress": _progress_bar("embedding")}
    if args.ray:
        from numbpie.app.ray_index import index_with_ray  # Ray loads only for --ray

        index, skipped = index_with_ray(
            folder, embedder, name or embedders.default_name(), rows, address=None if args.ray == "local" else args.ray,
            actors=args.ray_actors, batch_size=args.ray_batch_size, cpus_per_actor=args.ray_cpus_per_actor, **options)
    else:
        index, skipped = index_catalog(folder, embedder, rows, **options)
    for message in skipped:
        print(message, file=sys.stderr)
    print(f"index: {len(index)} vectors from embedder {embedder.name!r} in {folder}")
    return 0


def _tags(text: str | None) -> dict:
    """The --tags JSON object, e.g. '{"sleeve_length": "long"}'."""
    if not text:
        return {}
    try:
        tags = json.loads(text)
    except json.JSONDecodeError as error:
        raise OptionError(f"--tags is not JSON ({error.msg}); give an object such as '{{\"fit\": \"loose\"}}'.") from None
    if not isinstance(tags, dict):
        raise OptionError("--tags must be a JSON object such as '{\"fit\": \"loose\"}'.")
    return tags


def cmd_search(args) -> int:
    tags = _tags(args.tags)
    try:
        query = images.load(Path(args.image))
    except images.ImageError as error:
        raise images.ImageError(f"{args.image}: {error}") from None
    pipeline = assemble.open_pipeline(args.catalog, embedder=args.embedder, precision=args.precision)
    result = pipeline.search(query, k=args.k, tags=tags, model_view=args.model_view, detect=not args.no_detect,
                             threshold=args.threshold, category=args.category, min_score=args.min_score)
    rows = [{"id": m.product.id, "title": m.product.title, "score": round(m.score, 4),
             "image": m.product.image, "category": m.product.category} for m in result.matches]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for rank, row in enumerate(rows, 1):
        print(f"{rank:>2}. {row['score']:.3f}  #{row['id']:<6} {row['title']}  ({row['image']})")
    if result.box is not None:
        print(f"searched for the garment in box {tuple(round(v) for v in result.box)}", file=sys.stderr)
    if result.edit is not None:
        print(f"edited: {' → '.join(name for name, _ in result.edit.steps)}", file=sys.stderr)
    if result.prefer:
        wanted = ", ".join(f"{name} {value}" for name, value in result.prefer.items())
        print(f"products with {wanted} (as read on the edit) first", file=sys.stderr)
    steps = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in result.timings.items())
    print(f"time: {steps}", file=sys.stderr)
    return 0


def cmd_info(args) -> int:
    folder = Path(args.catalog)
    require_catalog(folder)
    catalog = open_catalog(folder)
    info = {"catalog": str(folder), "products": len(catalog)}
    categories: dict[str, int] = {}
    for product in catalog:
        categories[product.category] = categories.get(product.category, 0) + 1
    info["categories"] = categories
    info["index"] = Index.read_manifest(folder) if (folder / "index.json").exists() else None
    print(json.dumps(info, indent=2))
    return 0


def cmd_serve(args) -> int:
    from numbpie.app import http  # FastAPI, uvicorn and the models: only for serve

    http.serve(args.catalog, host=args.host, port=args.port, api_key_file=args.api_key_file)
    return 0


def cmd_train_embedder(args) -> int:
    from numbpie.training import embedder as train_embedder

    return train_embedder.main(args)


def cmd_train_tagger(args) -> int:
    from numbpie.training import tagger as train_tagger

    return train_tagger.main(args)


def _print_metrics(metrics: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(metrics))
        return
    for key, value in metrics.items():
        if isinstance(value, dict):  # a breakdown, e.g. by_size: {"<64": {"recall@1": ..}}
            _print_metrics({f"{key} {name}": inner for name, inner in value.items()}, False)
        else:
            print(f"{key:>22}: {value:.4f}" if isinstance(value, float) else f"{key:>22}: {value}")


def cmd_eval(args) -> int:
    needs = "root" if args.what == "inshop" else "data"
    if getattr(args, needs) is None:
        raise OptionError(f"eval {args.what} needs --{needs}.")
    run = {"retrieval": _eval_retrieval, "detector": _eval_detector, "edits": _eval_edits, "inshop": _eval_inshop,
           "tagger": _eval_tagger}
    _print_metrics(run[args.what](args), args.json)
    return 0


def _eval_detector(args) -> dict:
    return evaluate_detector(detector.load(args.detector), args.data, split=args.split)


def _eval_retrieval(args) -> dict:
    found = detector.load(args.detector) if args.crop == "detector" else None
    model = embedders.load(args.embedder, precision=args.precision)
    metrics = evaluate_retrieval(args.data, model, crop=args.crop, split=args.split, detector=found,
                                 gallery=args.gallery)
    return {**metrics, "embedder": model.name, "precision": model.precision}


def _eval_tagger(args) -> dict:
    return evaluate_tagger(args.data, taggers.load(args.tagger), args.split)


def _eval_inshop(args) -> dict:
    model = embedders.load(args.embedder)
    metrics = evaluate_inshop(args.root, model, progress=_progress_bar("embed"))
    return {**metrics, "embedder": model.name}


def _load_editor(name: str, args):
    if name == "identity":
        return edits.Unchanged()
    if name == "truth":
        return edits.TrueRender(args.data, args.split)
    if name == "fashion_gan" or Path(name).is_dir():  # a folder laid out like fashion_gan's models/
        return gan.load_fashion_gan(None if name == "fashion_gan" else name)
    editor = assemble.bundled_editor()
    if editor is None:
        raise WeightsError("No bundled GAN editors are registered in weights/manifest.json; train them "
                           "with python -m gan.train, or pass --editor fashion_gan or --editor identity.")
    return editor


def _eval_edits(args) -> dict:
    editor = _load_editor(args.editor, args)
    if args.sheet:
        edits.edit_sheet(args.data, editor, args.split).save(args.sheet, optimize=True)
        print(f"contact sheet: {args.sheet}", file=sys.stderr)
    tagger = taggers.load(args.tagger)
    search = None if args.no_search else edits.gallery_search(args.data, embedders.load(args.embedder), args.split,
                                                               tagger=tagger)
    metrics = edits.evaluate_edits(args.data, editor, tagger, args.split,
                                   args.per_value, search, progress=_progress_bar("edit"))
    if not args.json:  # the per-value breakdown as one line each
        for key, row in metrics.pop("per_value").items():
            print(f"{key:>24}: " + "  ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                            for k, v in row.items()))
    return {**metrics, "editor": args.editor}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m numbpie", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("index", help="import images into a catalog folder and index them")
    p.add_argument("source", nargs="?", help="a folder of images (root/<category>/...) or a CSV")
    p.add_argument("--catalog", required=True, help="catalog folder to create or extend")
    p.add_argument("--embedder", default=None, help="bundled, imagenet, random, or a weights path (default: the one the catalog's index was built with, else bundled)")
    p.add_argument("--factory", default=DEFAULT_FACTORY, help="FAISS index factory string (inner product)")
    p.add_argument("--image-column", default="image", help="CSV column holding image paths")
    p.add_argument("--rebuild", action="store_true", help="drop the existing index and embed everything again")
    p.add_argument("--checkpoint-every", type=int, default=128, help="save the index every N images")
    p.add_argument("--precision", choices=PRECISION_CHOICES, default="auto", help=PRECISION_HELP)
    p.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="embed on Ray Data: alone, a local Ray instance; with ADDRESS (host:port of `ray start "
                        "--head`), that cluster. Put it after SOURCE (docs/scale.md)")
    p.add_argument("--ray-actors", type=int, default=2, help="--ray: embedder actors, each loading one model")
    p.add_argument("--ray-batch-size", type=int, default=32, help="--ray: images per actor call")
    p.add_argument("--ray-cpus-per-actor", type=int, default=1, help="--ray: CPUs (torch threads) per actor")
    p.set_defaults(run=cmd_index)

    p = commands.add_parser("search", help="find the catalog products most similar to a photo")
    p.add_argument("image", help="query image (jpg, png, webp, bmp, gif)")
    p.add_argument("--catalog", required=True, help="catalog folder built by `index`")
    p.add_argument("-k", type=int, default=5, help="number of results")
    p.add_argument("--category", default=None, help="only products of this category")
    p.add_argument("--min-score", type=float, default=0.0, help="drop results below this cosine score")
    p.add_argument("--embedder", default=None, help="defaults to the one the index was built with")
    p.add_argument("--no-detect", action="store_true", help="search the whole photo instead of the detected garment")
    p.add_argument("--threshold", type=float, default=None, help="detector score threshold (default: the detector's)")
    p.add_argument("--tags", default=None,
                   help='restyle the garment before searching, as JSON: \'{"sleeve_length": "long", "pattern": "floral"}\'')
    p.add_argument("--model-view", action="store_true", help="show the (edited) garment worn by a model before searching")
    p.add_argument("--json", action="store_true", help="print a JSON list of {id, title, score, image}")
    p.add_argument("--precision", choices=PRECISION_CHOICES, default="auto",
                   help=PRECISION_HELP + "; a query runs in the index's precision unless the two agree")
    p.set_defaults(run=cmd_search)

    p = commands.add_parser("info", help="what a catalog folder and its index hold")
    p.add_argument("--catalog", required=True, help="catalog folder")
    p.set_defaults(run=cmd_info)

    p = commands.add_parser("serve", help="serve search, edit and the catalog over HTTP (FastAPI; docs at /docs)")
    p.add_argument("--catalog", default=None, help="catalog folder built by `index` (default: the demo catalog)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind; any but loopback needs --api-key-file")
    p.add_argument("--port", type=int, default=8000, help="port to listen on")
    p.add_argument("--api-key-file", default=None,
                   help="file holding the key every request but /health must send as 'Authorization: Bearer KEY'")
    p.set_defaults(run=cmd_serve)

    from numbpie.training.embedder import add_arguments as train_embedder_arguments

    p = commands.add_parser("train-embedder", help="train the retrieval embedder on a synth dataset")
    train_embedder_arguments(p)
    p.set_defaults(run=cmd_train_embedder)

    from numbpie.training.tagger import add_arguments as train_tagger_arguments

    p = commands.add_parser("train-tagger", help="train the attribute tagger on a synth dataset")
    train_tagger_arguments(p)
    p.set_defaults(run=cmd_train_tagger)

    p = commands.add_parser("eval", help="measure quality on held-out synthetic data")
    p.add_argument("what", choices=["retrieval", "detector", "edits", "tagger", "inshop"],
                   help="retrieval: street-to-shop recall@k/mAP; detector: mAP@0.5 and mean IoU; edits: "
                        "edit success/preservation/L1/search; tagger: accuracy per attribute; "
                        "inshop: DeepFashion In-shop Recall@1/10/20")
    p.add_argument("--data", help="a dataset written by `python -m numbpie synth` (retrieval, detector, edits)")
    p.add_argument("--root", help="the DeepFashion In-shop folder, holding Eval/ and img/ (inshop)")
    p.add_argument("--editor", default="bundled",
                   help="edits: bundled, fashion_gan, a folder written by python -m gan.train, identity (the "
                        "do-nothing baseline) or truth (renders the true edit: the judges' ceiling)")
    p.add_argument("--sheet", default=None, help="edits: also write a contact sheet (PNG) of 8 products under every tag")
    p.add_argument("--tagger", default="bundled", help="edits: tagger name or path that judges the edits")
    p.add_argument("--per-value", type=int, default=8, help="edits: products edited per attribute value")
    p.add_argument("--no-search", action="store_true", help="edits: skip the edit-then-search figure")
    p.add_argument("--embedder", default=None, help="embedder name or path (default: bundled if present)")
    p.add_argument("--crop", choices=CROPS, default="gt",
                   help="how street queries are cropped: ground-truth box, detector, or whole photo")
    p.add_argument("--detector", default="bundled", help="detector name or path (eval detector, --crop detector)")
    p.add_argument("--precision", choices=PRECISION_CHOICES, default="auto", help="retrieval: " + PRECISION_HELP)
    p.add_argument("--split", default="test", help="which split's products to evaluate on ('all': every product)")
    p.add_argument("--gallery", choices=["split", "all"], default="split",
                   help="retrieval: search the split's products or every product of the dataset")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=cmd_eval)

    p = commands.add_parser("synth", help="write a synthetic fashion dataset")
    synth_cli.add_arguments(p)
    p.set_defaults(run=synth_cli.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "k", 1) < 1:
        parser.error("-k must be at least 1")
    try:
        return args.run(args)
    except UserError as error:  # the one place the CLI turns a user's mistake into a sentence
        if os.environ.get("NUMBPIE_DEBUG"):
            raise
        print(f"numbpie: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("numbpie: interrupted", file=sys.stderr)
        return 130
