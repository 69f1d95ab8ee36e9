"""Conditional GANs that redesign a garment: StarGAN (shape), CycleGAN (pattern), pix2pix (model view)."""

from .editor import Edit, Editor, StyleEditor
from .loading import load, load_fashion_gan, save

__all__ = ["Edit", "Editor", "StyleEditor", "load", "load_fashion_gan", "save"]
