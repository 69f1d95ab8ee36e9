"""Pictures for people: boxes drawn on photos, detection labels, the style controls' starting choice."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageDraw

__all__ = ["detection_labels", "draw_boxes", "letterbox", "tag_index"]

BOX_COLOURS = ((230, 57, 70), (29, 120, 230), (42, 157, 90), (244, 162, 97))


def draw_boxes(image: Image.Image, boxes: Sequence, labels: Sequence[str] = (), width: int = 0) -> Image.Image:
    """A copy of `image` with each (x0, y0, x1, y1) box outlined and optionally labelled."""
    out = image.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    width = width or max(2, round(max(out.size) / 200))
    for n, box in enumerate(boxes):
        colour = BOX_COLOURS[n % len(BOX_COLOURS)]
        draw.rectangle(tuple(float(v) for v in box), outline=colour, width=width)
        if n < len(labels):
            x0, y0 = float(box[0]), float(box[1])
            text_box = draw.textbbox((x0 + width, y0 + width), labels[n])
            draw.rectangle(text_box, fill=colour)
            draw.text((x0 + width, y0 + width), labels[n], fill=(255, 255, 255))
    return out


def detection_labels(detections: Sequence) -> list[str]:
    """One short, distinct label per detection: '1 dress 0.87', '2 top 0.55', ..."""
    return [f"{n} {d.label} {d.score:.2f}" for n, d in enumerate(detections, start=1)]


def tag_index(options: Sequence[str], value: str | None) -> int:
    """Position of `value` in `options`, or 0 (the 'keep' choice) when it is absent."""
    return list(options).index(value) if value in options else 0


def letterbox(image: Image.Image, size: tuple[int, int], fill=(255, 255, 255)) -> Image.Image:
    """`image` shrunk to fit `size` (w, h) whole, centred on a `fill` background: pictures of one size."""
    out = Image.new("RGB", size, fill)
    scale = min(size[0] / image.width, size[1] / image.height)
    fitted = image.convert("RGB").resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    out.paste(fitted, ((size[0] - fitted.width) // 2, (size[1] - fitted.height) // 2))
    return out
