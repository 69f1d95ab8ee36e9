"""Contact sheets of the synthetic world: random products, model and street shots, and paired edits."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from PIL import Image, ImageDraw

from numbpie.attributes import ATTRIBUTES
from numbpie.synth.model_shot import render_model
from numbpie.synth.product import render_product
from numbpie.synth.spec import random_spec
from numbpie.synth.street import render_street

__all__ = ["contact_sheet", "main", "paired_edit_sheet", "street_sheet"]

_BOX_COLORS = ((255, 40, 40), (40, 220, 255))


def _grid(
    images: list[Image.Image], columns: int, cell: tuple[int, int], gap: int = 4
) -> Image.Image:
    rows = -(-len(images) // columns)
    sheet = Image.new(
        "RGB", (columns * (cell[0] + gap) + gap, rows * (cell[1] + gap) + gap), (255, 255, 255)
    )
    for i, image in enumerate(images):
        x, y = gap + (i % columns) * (cell[0] + gap), gap + (i // columns) * (cell[1] + gap)
        sheet.paste(image.resize(cell, Image.LANCZOS), (x, y))
    return sheet


def contact_sheet(seed: int = 0) -> Image.Image:
    """64 random product shots (128 px), then 16 model shots and 16 street photos."""
    products = _grid(
        [render_product(random_spec(seed + i), 256) for i in range(64)], 16, (128, 128)
    )
    models = _grid(
        [render_model(random_spec(seed + 64 + i), 256) for i in range(16)], 16, (128, 128)
    )
    street = []
    for i in range(16):
        others = (random_spec(seed + 200 + i),) if i % 4 == 3 else ()
        street.append(render_street(random_spec(seed + 100 + i), seed + i, others=others)[0])
    streets = _grid(street, 8, (256, 192))
    sheet = Image.new(
        "RGB", (products.width, products.height + models.height + streets.height), (255, 255, 255)
    )
    sheet.paste(products, (0, 0))
    sheet.paste(models, (0, products.height))
    sheet.paste(streets, ((products.width - streets.width) // 2, products.height + models.height))
    return sheet


def street_sheet(seed: int = 0) -> Image.Image:
    """Eight street photos with their ground-truth garment boxes drawn on."""
    images = []
    for i in range(8):
        others = (random_spec(seed + 300 + i),) if i % 2 else ()
        image, boxes = render_street(random_spec(seed + 100 + i), seed + 50 + i, others=others)
        draw = ImageDraw.Draw(image)
        for k, box in enumerate(boxes):
            draw.rectangle(box, outline=_BOX_COLORS[min(k, 1)], width=3)
        images.append(image)
    return _grid(images, 4, (320, 240))


def paired_edit_sheet(
    garments: tuple[tuple[int, str], ...] = ((1, "dress"), (2, "top"), (3, "dress"), (8, "top")),
) -> Image.Image:
    """Per (seed, category): the garment, then each value of every shape and pattern attribute in turn."""
    rows = []
    for seed, category in garments:
        spec = random_spec(seed, category)
        row = [render_product(spec, 128)]
        for name in ("sleeve_length", "fit", "neckline", "length", "pattern"):
            row += [
                render_product(dataclasses.replace(spec, **{name: v}), 128)
                for v in ATTRIBUTES[name]
            ]
        rows += row
    return _grid(rows, len(rows) // len(garments), (128, 128))


def main(argv: list[str] | None = None) -> int:
    """Write the sheets into docs/ (or the folder given as the first argument)."""
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0] if argv else "docs")
    out.mkdir(parents=True, exist_ok=True)
    contact_sheet().save(out / "synth_contact_sheet.png", optimize=True)
    street_sheet().save(out / "synth_street_boxes.png", optimize=True)
    paired_edit_sheet().save(out / "synth_paired_edits.png", optimize=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
