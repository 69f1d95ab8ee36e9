"""Errors a user can cause: one type, one sentence that says what to do next.

Every front end maps `UserError` once (the CLI prints it and exits 2, the page shows it with
`st.error`, the HTTP API answers 4xx); any other exception is a bug and shows as one.
The subclasses also derive from the built-in type they replaced, so `except ValueError` in
code written before them still catches them.
"""

from __future__ import annotations

__all__ = [
    "CatalogError", "DatasetError", "EditError", "ImageError", "IndexMismatchError", "OptionError", "TagError",
    "TrainingError", "UnsupportedImageError", "UserError", "WeightsError",
]


class UserError(Exception):
    """Something the user can fix: a bad file, option, tag or folder. The message is one sentence."""


class ImageError(UserError, ValueError):
    """An upload or image file that cannot be used (format, size, corrupt data)."""


class UnsupportedImageError(ImageError):
    """Data that is not one of the supported image formats (a TIFF, a PDF, an SVG, text...)."""


class WeightsError(UserError, FileNotFoundError):
    """A model name or file that is unknown, missing or fails its checksum."""


class IndexMismatchError(UserError, ValueError):
    """An index built by another embedder, or out of step with its catalog."""


class TagError(UserError, ValueError):
    """A style tag or value outside numbpie.attributes."""


class TrainingError(UserError, ValueError):
    """Training options or data that cannot start or resume a run."""


class EditError(TagError):
    """Tags the loaded editor cannot apply: a missing generator, or a tag this garment cannot take."""


class CatalogError(UserError, ValueError):
    """A catalog folder, catalog file or import source that cannot be used as asked."""


class DatasetError(UserError, ValueError):
    """A dataset folder (synth, In-shop, COCO boxes) that is missing or lacks what a command reads."""


class OptionError(UserError, ValueError):
    """An option or argument outside what it accepts (a FAISS factory string, a precision, a box)."""
