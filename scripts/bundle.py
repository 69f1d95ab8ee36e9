"""Copy a trained model file into weights/ and record it in weights/manifest.json.

    python scripts/bundle.py gan/stargan runs/gan/stargan/shape.safetensors \
        --as gan/stargan-synth64.safetensors --set role=stargan --set image_size=64 \
        --json training=runs/gan/stargan.training.json

The entry gets the file's sha256 and size; `--set key=value` and `--json key=FILE` add fields
(a value that parses as JSON is stored parsed). An existing entry of the same key is replaced,
and an earlier bundled file it named is removed, so weights/ holds only what the manifest lists.

`--run FOLDER` (a numbpie.training.loop run folder) records the campaign: the steps and images
the run reached, its best validation row and every validation row of its history. The rows
are appended to the `campaign` list the previous entry kept, so the manifest holds the curve
of a training campaign over every session that continued it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def run_record(folder: Path, earlier: list[dict]) -> dict:
    """A run folder's progress, best row and validation history, after the `earlier` campaign rows."""
    folder = Path(folder)
    checkpoint = json.loads((folder / "checkpoint.json").read_text())
    history = [json.loads(line) for line in (folder / "history.jsonl").read_text().splitlines() if line]
    # A row is new unless this folder already gave it (a wiped folder restarts its steps, not its times).
    seen = {(row.get("run"), row["step"], row.get("time")) for row in earlier}
    rows = [{"run": str(folder), **row} for row in history if (str(folder), row["step"], row.get("time")) not in seen]
    return {"steps": checkpoint["step"], "options": checkpoint["options"],
            "best": json.loads((folder / "best.json").read_text()), "campaign": [*earlier, *rows]}


def bundle(key: str, source: Path, name: str, fields: dict, weights: Path | None = None,
           run: Path | None = None) -> dict:
    """Copy `source` to weights/`name` and write the manifest entry `key`; returns the entry."""
    weights = weights or WEIGHTS
    manifest_path = weights / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    previous = manifest["assets"].get(key, {})
    old = previous.get("file")
    if run is not None:
        fields = {**fields, "run": run_record(run, previous.get("run", {}).get("campaign", []))}
    target = weights / name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    if old and old != name and (weights / old).is_file():
        (weights / old).unlink()
    data = target.read_bytes()
    entry = {"kind": key.split("/", 1)[0], "file": name, "sha256": hashlib.sha256(data).hexdigest(),
             "size": len(data), **fields}
    manifest["assets"][key] = entry
    manifest_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return entry


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("key", help="manifest key, kind/name (e.g. gan/stargan)")
    p.add_argument("source", type=Path, help="the trained file")
    p.add_argument("--as", dest="name", required=True, help="file name under weights/")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a field of the entry")
    p.add_argument("--json", action="append", default=[], metavar="KEY=FILE", help="a field read from a JSON file")
    p.add_argument("--run", type=Path, default=None, help="the training run folder: its history joins the campaign")
    args = p.parse_args(argv)
    fields = {}
    for item in args.set:
        key, _, value = item.partition("=")
        fields[key] = _value(value)
    for item in args.json:
        key, _, path = item.partition("=")
        fields[key] = json.loads(Path(path).read_text())
    entry = bundle(args.key, args.source, args.name, fields, run=args.run)
    print(f"{args.key}: weights/{entry['file']} ({entry['size'] / 1e6:.1f} MB, sha256 {entry['sha256'][:12]}...)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
