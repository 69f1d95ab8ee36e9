"""Quality on held-out data: street-to-shop retrieval, edits, the tagger and DeepFashion In-shop.

Each module judges the models it is handed (`python -m numbpie eval ...` picks them); the pure
metrics on arrays live in `numbpie.metrics`, the dataset readers in `numbpie.synth.splits`.
"""
