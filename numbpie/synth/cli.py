"""`python -m numbpie synth`: write a synthetic dataset (images, catalog, boxes, splits)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from numbpie.synth.dataset import write_dataset

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the synth command's options to `parser`."""
    parser.add_argument("--out", type=Path, required=True, help="folder to write the dataset into")
    parser.add_argument(
        "--products", type=int, default=200, help="number of products (default 200)"
    )
    parser.add_argument(
        "--street-per-product", type=int, default=2, help="street photos per product (default 2)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed: the same arguments give byte-identical files"
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="processes to render with (output is the same)"
    )
    parser.add_argument(
        "--no-progress", dest="progress", action="store_false", help="hide the progress bar"
    )


def main(args: argparse.Namespace) -> int:
    """Write the dataset and print a one-line JSON summary; 2 on bad arguments."""
    if args.products < 1 or args.street_per_product < 0:
        print(
            "synth: --products must be at least 1 and --street-per-product at least 0.",
            file=sys.stderr,
        )
        return 2
    start = time.perf_counter()
    summary = write_dataset(
        args.out,
        args.products,
        args.street_per_product,
        args.seed,
        progress=args.progress,
        workers=args.workers,
    )
    summary["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m numbpie.synth.cli", description=__doc__)
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))
