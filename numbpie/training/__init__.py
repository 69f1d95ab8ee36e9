"""Training: one loop (`loop`) and the trainers built on it (embedder, tagger).

The GAN and detector trainers (`gan.train`, `detector.train`) use the same loop.
"""
