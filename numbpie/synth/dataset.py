"""Write a synthetic dataset: product, model and street images, a catalog, COCO boxes and splits."""

from __future__ import annotations

import bisect
import json
import multiprocessing
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from numbpie.catalog import Catalog
from numbpie.errors import DatasetError, OptionError
from numbpie.synth.model_shot import render_model
from numbpie.synth.product import render_product
from numbpie.synth.spec import random_spec, title
from numbpie.synth.street import render_street

__all__ = ["CATEGORY_IDS", "STREET_SIZE", "TRAIN_SEEDS", "product_seed", "split_ids", "write_dataset"]

CATEGORY_IDS = {"top": 1, "dress": 2}
_SPLITS = (("train", 0.8), ("val", 0.1), ("test", 0.1))
_TWO_FIGURES = 0.25  # share of street photos with a second figure
STREET_SIZE = (640, 480)
# random_spec seeds for products rendered on the fly in training: above every dataset seed
# (product_seed keeps 31 bits), so no dataset product, held-out ones included, is trained on.
TRAIN_SEEDS = (2**31, 2**32)


def product_seed(seed: int, product_id: int) -> int:
    """The `random_spec` seed of product `product_id` in the dataset made with `seed`."""
    return int(
        np.random.SeedSequence([int(seed), int(product_id)]).generate_state(1)[0] & 0x7FFFFFFF
    )


def split_ids(ids: list[int], seed: int) -> dict[str, list[int]]:
    """Disjoint train/val/test lists (about 80/10/10) covering `ids`, shuffled by `seed`."""
    order = np.random.default_rng([int(seed), 11]).permutation(len(ids))
    n_val = int(round(len(ids) * _SPLITS[1][1]))
    n_test = int(round(len(ids) * _SPLITS[2][1]))
    n_train = len(ids) - n_val - n_test
    shuffled = [ids[i] for i in order]
    parts = (shuffled[:n_train], shuffled[n_train : n_train + n_val], shuffled[n_train + n_val :])
    return {name: sorted(part) for (name, _), part in zip(_SPLITS, parts, strict=True)}


def _json(path: Path, value) -> None:
    path.write_text(
        json.dumps(value, sort_keys=True, separators=(",", ":")) + "\n", encoding="utf-8"
    )


def _street_others(seed: int, pid: int, k: int, split: list[int]) -> list[int]:
    """Ids of the extra figures in street photo k of product `pid` (same split, so none leaks)."""
    rng = np.random.default_rng([int(seed), pid, k, 9])
    if len(split) < 2 or rng.random() >= _TWO_FIGURES:
        return []
    pick = int(
        rng.integers(len(split) - 1)
    )  # an index into `split` without `pid` (split is sorted)
    return [split[pick + (pick >= bisect.bisect_left(split, pid))]]


def _street_seed(seed: int, pid: int, k: int) -> int:
    return int(np.random.SeedSequence([int(seed), pid, k, 8]).generate_state(1)[0])


def _render_one(job: tuple) -> list[tuple[int, list[int], list]]:
    """Render and save every image of one product; return (k, figure ids, boxes) per street photo."""
    out, seed, pid, spec_seed, street = job
    spec = random_spec(spec_seed)
    render_product(spec).save(out / f"products/{pid}.png", compress_level=6)
    render_model(spec).save(out / f"models/{pid}.png", compress_level=6)
    photos = []
    for k, others in enumerate(street):
        image, boxes = render_street(
            spec, _street_seed(seed, pid, k), others=[random_spec(s) for _, s in others]
        )
        image.save(out / f"street/{pid}_{k}.jpg", "JPEG", quality=92, subsampling=0)
        photos.append((k, [pid, *(o for o, _ in others)], boxes))
    return photos


def _coco(rendered: dict[int, list], specs: dict, split_of: dict, size: tuple[int, int]) -> dict:
    """The COCO-style record of every street photo's garment boxes, in product then photo order."""
    images, annotations = [], []
    for pid in sorted(rendered):
        for k, owners, boxes in rendered[pid]:
            image_id = len(images) + 1
            images.append(
                {
                    "id": image_id,
                    "file_name": f"street/{pid}_{k}.jpg",
                    "width": size[0],
                    "height": size[1],
                    "product_id": pid,
                    "split": split_of[pid],
                }
            )
            for owner, (x0, y0, x1, y1) in zip(owners, boxes, strict=True):
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": image_id,
                        "category_id": CATEGORY_IDS[specs[owner].category],
                        "bbox": [x0, y0, x1 - x0, y1 - y0],
                        "area": (x1 - x0) * (y1 - y0),
                        "iscrowd": 0,
                        "product_id": owner,
                    }
                )
    categories = [{"id": i, "name": name} for name, i in CATEGORY_IDS.items()]
    return {"images": images, "annotations": annotations, "categories": categories}


def _catalog(out: Path, specs: dict, seeds: dict, splits: dict) -> None:
    path = out / "catalog.sqlite"
    path.unlink(missing_ok=True)  # a fresh file, so the same arguments give the same bytes
    split_of = {pid: name for name, ids in splits.items() for pid in ids}
    rows = [
        (
            out / f"products/{pid}.png",
            title(spec),
            spec.category,
            spec.attributes,
            {"split": split_of[pid], "seed": seeds[pid], "model": f"models/{pid}.png"},
        )
        for pid, spec in specs.items()
    ]
    catalog = Catalog(path)
    ids = catalog.add_many(rows)
    catalog.close()
    if ids != list(specs):
        raise DatasetError(
            f"{path} assigned unexpected product ids; delete the folder and write it again."
        )


def write_dataset(
    out: Path,
    products: int,
    street_per_product: int,
    seed: int,
    progress: bool | Callable[[int, int], None] = True,
    workers: int = 1,
) -> dict:
    """Write `products` garments (ids 1..N) with `street_per_product` street photos each under `out`.

    `progress` is True for a progress bar, or a function called with (done, total) after each
    product. The files depend only on (products, street_per_product, seed), never on `workers`.
    `workers` > 1 renders in spawned processes: call it from a script's `__main__` guard only.
    """
    if products < 1 or street_per_product < 0:
        raise OptionError("Ask for at least one product and zero or more street photos per product.")
    out = Path(out)
    for folder in ("products", "models", "street"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    seeds = {pid: product_seed(seed, pid) for pid in range(1, products + 1)}
    specs = {pid: random_spec(s) for pid, s in seeds.items()}
    splits = split_ids(list(specs), seed)
    split_of = {pid: name for name, ids in splits.items() for pid in ids}
    jobs = []
    for pid in specs:
        street = [
            [(o, seeds[o]) for o in _street_others(seed, pid, k, splits[split_of[pid]])]
            for k in range(street_per_product)
        ]
        jobs.append((out, seed, pid, seeds[pid], street))
    rendered = {}
    with tqdm(total=products, desc="synth", unit="product", disable=progress is not True) as bar:
        for pid, photos in zip(specs, _map(_render_one, jobs, workers), strict=True):
            rendered[pid] = photos
            bar.update(1)
            if callable(progress):
                progress(len(rendered), products)
    coco = _coco(rendered, specs, split_of, STREET_SIZE)
    _json(out / "street.json", coco)
    _json(out / "splits.json", splits)
    _catalog(out, specs, seeds, splits)
    return {
        "out": str(out),
        "products": products,
        "street": len(coco["images"]),
        "boxes": len(coco["annotations"]),
        "splits": {name: len(ids) for name, ids in splits.items()},
    }


def _map(function, jobs: list, workers: int):
    """`function` over `jobs` in order, in `workers` processes when more than one."""
    if workers <= 1:
        yield from map(function, jobs)
        return
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        yield from pool.imap(function, jobs, chunksize=4)
