"""numbpie: fashion visual search with GAN style edits (detect, embed, search, redesign)."""

__version__ = "0.1.0"
