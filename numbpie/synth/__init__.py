"""The synthetic fashion world: garments with exact attributes in product, model and street views."""

from numbpie.synth.dataset import TRAIN_SEEDS, product_seed, split_ids, write_dataset
from numbpie.synth.model_shot import model_regions, render_model
from numbpie.synth.product import garment_mask, product_regions, render_product
from numbpie.synth.spec import GarmentSpec, random_spec, title
from numbpie.synth.street import render_street, street_scene

__all__ = [
    "TRAIN_SEEDS",
    "GarmentSpec",
    "garment_mask",
    "model_regions",
    "product_regions",
    "product_seed",
    "random_spec",
    "render_model",
    "render_product",
    "render_street",
    "split_ids",
    "street_scene",
    "title",
    "write_dataset",
]
