"""TensorFlow and Keras, imported the one safe way for a process that also runs torch.

PyPI's torch pulls in triton, which loads its own LLVM; if that happens after TensorFlow has
loaded its LLVM, both register the same options and the process aborts. Loading torchvision
(and with it triton) first avoids that, so every detector module imports TensorFlow from here.
"""

import contextlib

with contextlib.suppress(ImportError):  # a TensorFlow-only install is fine
    import torchvision  # noqa: F401  (import order matters; see above)

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

__all__ = ["keras", "tf"]
