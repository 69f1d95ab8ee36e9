"""Tagger accuracy per attribute on a synth split: product shots and street crops scored apart."""

from __future__ import annotations

from pathlib import Path

from numbpie.synth.splits import split_views
from numbpie.tagger import Tagger, accuracy

__all__ = ["evaluate_tagger"]


def evaluate_tagger(data: str | Path, tagger: Tagger, split: str = "test") -> dict[str, float]:
    """{'product/<attribute>': accuracy, 'street/<attribute>': accuracy} on the split's views."""
    views = split_views(data, split, tagger.input_size, margin=0.1)
    out = {}
    for kind in ("product", "street"):
        mine = [(view, {"category": product.category, **product.attributes})
                for view, product, found in views if found == kind]
        scores = accuracy(tagger, [view for view, _ in mine], [tags for _, tags in mine])
        out.update({f"{kind}/{name}": value for name, value in scores.items()})
    return out
