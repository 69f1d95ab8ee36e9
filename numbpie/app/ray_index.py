"""Embed a catalog's images on Ray Data, for catalogs that outgrow one machine.

`index_with_ray` runs the same `index_catalog` as the single-machine path (same ids, same
checkpoints, same crash-safety); only the embedding moves: Ray Data's `map_batches` feeds the
image paths through a fixed pool of `EmbedBatch` actors, each loading one embedder, and the
vectors stream back to the driver in path order. Every node needs the same checkout and
virtualenv, and must see the images at the paths the catalog records (a shared filesystem).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import ray

from numbpie.app.indexer import index_catalog, read_image
from numbpie.errors import OptionError, WeightsError

__all__ = ["EmbedBatch", "RayEmbed", "index_with_ray"]


class EmbedBatch:
    """The `map_batches` callable: one embedder per actor, `{pos, path}` batches in, vectors out."""

    def __init__(self, embedder: str, identity: dict, precision: str, threads: int = 1):
        import torch

        from numbpie import embedder as embedders

        torch.set_num_threads(max(1, threads))
        # The driver's precision, not this node's "auto": one index holds vectors of one precision.
        self.embedder = embedders.load(embedder, precision=precision)
        if self.embedder.identity != identity:  # a node with other weights would mix vector spaces
            raise WeightsError(f"Embedder {embedder!r} on this node is {self.embedder.identity}, the driver's "
                               f"is {identity}; install the same weights on every node.")

    def __call__(self, batch: dict) -> dict:
        loaded = [read_image(path) for path in batch["path"]]
        vectors = np.zeros((len(loaded), self.embedder.dim), np.float32)
        good = [i for i, (pic, _) in enumerate(loaded) if pic is not None]
        if good:
            vectors[good] = self.embedder.embed([loaded[i][0] for i in good])
        return {"pos": batch["pos"], "vector": vectors, "error": np.array([why for _, why in loaded], dtype=object)}


class RayEmbed:
    """`embed_paths` for `index_catalog` that runs on Ray; joins `address` or starts a local instance.

    Ray starts on the first call with images to embed (a finished catalog never starts it); each
    actor loads `embedder` (a name or path) and checks it against the driver's identity and
    precision. `shutdown` stops a local instance this object started, or leaves the cluster it joined.
    """

    def __init__(self, embedder: str, address: str | None = None, actors: int = 2,
                 batch_size: int = 32, cpus_per_actor: int = 1, object_store_memory: int | None = None):
        if actors < 1 or batch_size < 1 or cpus_per_actor < 1:
            raise OptionError("--ray-actors, --ray-batch-size and --ray-cpus-per-actor must be at least 1.")
        path = Path(embedder)
        # Actors resolve the name themselves, maybe in another working directory.
        self.embedder = str(path.resolve()) if path.exists() else embedder
        self.address = address
        self.actors, self.batch_size, self.cpus_per_actor = actors, batch_size, cpus_per_actor
        self.object_store_memory = object_store_memory
        self._connected = False

    def __call__(self, paths: Sequence, embedder) -> Iterator[tuple]:
        if not paths:
            return
        self._connect()
        # Absolute: a SOURCE given relative to the driver's directory means nothing to an actor.
        absolute = [str(Path(path).absolute()) for path in paths]
        for batch in self._batches(absolute, embedder.identity, embedder.precision):
            for vector, why in zip(batch["vector"], batch["error"], strict=True):
                yield (None if why else vector), str(why)

    def _connect(self) -> None:
        if ray.is_initialized():
            return
        need = self.actors * self.cpus_per_actor
        # The driver's own bar is the progress report; Ray's notices go to its session logs.
        common = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
        if self.address:
            try:
                ray.init(address=self.address, **common)
            except ConnectionError as error:
                raise OptionError(f"No Ray cluster at {self.address} ({error}). Start one with "
                                  "`ray start --head`, or drop the address to run Ray locally.") from None
            have = ray.cluster_resources().get("CPU", 0)
            if have < need:
                ray.shutdown()
                raise OptionError(f"The Ray cluster at {self.address} has {have:g} CPUs; {self.actors} actors "
                                  f"of {self.cpus_per_actor} CPU need {need}. Lower --ray-actors or add nodes.")
        else:  # logical CPUs: the pool asked for always fits, even past the cores there are
            # "local": a new instance, never a cluster found through RAY_ADDRESS or /tmp/ray.
            ray.init(address="local", num_cpus=max(os.cpu_count() or 1, need),
                     object_store_memory=self.object_store_memory, **common)
        self._connected = True

    def _batches(self, paths: list[str], identity: dict, precision: str) -> Iterator[dict]:
        """Ray Data blocks of `{pos, vector, error}`, checked to arrive in path order."""
        for handler in logging.getLogger("ray.data").handlers:  # set up when ray.data is first used
            if isinstance(handler, logging.StreamHandler):  # the console, not the session log file
                handler.setLevel(logging.ERROR)
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # results in product-id order
        context.enable_progress_bars = False  # the driver draws one bar for the whole run
        context.print_on_execution_start = False
        # Small blocks: a failed node costs a retry of a few batches, not of its whole share;
        # and at least one per actor, or a short run leaves actors idle.
        blocks = max(min(self.actors, len(paths)),
                     min(math.ceil(len(paths) / (4 * self.batch_size)), 10_000))
        items = ray.data.from_items([{"pos": i, "path": p} for i, p in enumerate(paths)],
                                    override_num_blocks=blocks)
        vectors = items.map_batches(
            EmbedBatch, batch_size=self.batch_size, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=self.actors), num_cpus=self.cpus_per_actor,
            fn_constructor_kwargs={"embedder": self.embedder, "identity": identity, "precision": precision,
                                   "threads": self.cpus_per_actor})
        expected = 0
        for batch in vectors.iter_batches(batch_size=None, batch_format="numpy"):
            if not np.array_equal(batch["pos"], np.arange(expected, expected + len(batch["pos"]))):
                raise RuntimeError(f"Ray Data returned images out of order at position {expected}.")
            expected += len(batch["pos"])
            yield batch
        if expected != len(paths):
            raise RuntimeError(f"Ray Data returned {expected} of {len(paths)} images.")

    def shutdown(self) -> None:
        if self._connected:
            ray.shutdown()
            self._connected = False


def index_with_ray(folder: str | Path, embedder, embedder_name: str, rows: Sequence[tuple] = (), *,
                   address: str | None = None, actors: int = 2, batch_size: int = 32, cpus_per_actor: int = 1,
                   object_store_memory: int | None = None, **options):
    """`index_catalog` with the embedding on Ray: the same `(index, messages)`, the same files.

    `embedder` is the driver's copy: it names the index's embedder and precision (and checks an
    index's stored vectors, as without Ray); each actor loads `embedder_name` in that precision.
    `options` go to `index_catalog` (factory, rebuild, checkpoint_every, progress).
    """
    embed = RayEmbed(embedder_name, address, actors, batch_size, cpus_per_actor, object_store_memory)
    try:
        return index_catalog(folder, embedder, rows, embed_paths=embed, **options)
    finally:
        embed.shutdown()
