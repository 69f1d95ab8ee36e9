"""scripts/bundle.py: a trained file goes into weights/ with its sha256 and size in the manifest."""

import hashlib
import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bundle.py"
spec = importlib.util.spec_from_file_location("bundle_script", SCRIPT)
bundle_script = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bundle_script)


def test_bundle_copies_the_file_records_it_and_replaces_an_older_one(tmp_path):
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "manifest.json").write_text(json.dumps({"format": 1, "assets": {"tagger/bundled": {"kind": "tagger"}}}))
    first, second = tmp_path / "a.bin", tmp_path / "b.bin"
    first.write_bytes(b"one")
    second.write_bytes(b"second file")

    bundle_script.bundle("gan/stargan", first, "gan/old.safetensors", {"role": "stargan"}, weights)
    entry = bundle_script.bundle("gan/stargan", second, "gan/new.safetensors", {"role": "stargan", "image_size": 64},
                                 weights)

    manifest = json.loads((weights / "manifest.json").read_text())
    assert manifest["assets"]["gan/stargan"] == entry
    assert entry == {"kind": "gan", "file": "gan/new.safetensors", "size": 11, "role": "stargan", "image_size": 64,
                     "sha256": hashlib.sha256(b"second file").hexdigest()}
    assert (weights / "gan/new.safetensors").read_bytes() == b"second file"
    assert not (weights / "gan/old.safetensors").exists()
    assert "tagger/bundled" in manifest["assets"]


def test_cli_parses_json_values(tmp_path, monkeypatch, capsys):
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "manifest.json").write_text(json.dumps({"format": 1, "assets": {}}))
    source = tmp_path / "m.bin"
    source.write_bytes(b"x")
    (tmp_path / "t.json").write_text('{"steps": 3}')
    monkeypatch.setattr(bundle_script, "WEIGHTS", weights)
    assert bundle_script.main(["gan/pix2pix", str(source), "--as", "p.safetensors", "--set", "image_size=64",
                               "--set", "role=pix2pix", "--json", f"training={tmp_path / 't.json'}"]) == 0
    entry = json.loads((weights / "manifest.json").read_text())["assets"]["gan/pix2pix"]
    assert (entry["image_size"], entry["role"], entry["training"]) == (64, "pix2pix", {"steps": 3})
    assert "gan/pix2pix: weights/p.safetensors" in capsys.readouterr().out


def _run_folder(folder, steps, rows):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "checkpoint.json").write_text(json.dumps({"step": steps, "options": {"lr": 0.1}}))
    (folder / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "best.json").write_text(json.dumps(max(rows, key=lambda r: r["score"])))


def test_a_run_folder_extends_the_campaign_history(tmp_path):
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "manifest.json").write_text(json.dumps({"format": 1, "assets": {}}))
    model = tmp_path / "m.bin"
    model.write_bytes(b"x")
    first = tmp_path / "runs" / "a"
    _run_folder(first, 500, [{"step": 250, "score": 0.5}, {"step": 500, "score": 0.6}])
    entry = bundle_script.bundle("embedder/bundled", model, "e.bin", {}, weights, run=first)
    assert entry["run"]["steps"] == 500 and entry["run"]["best"]["score"] == 0.6
    assert [row["step"] for row in entry["run"]["campaign"]] == [250, 500]
    # the next session resumed the same folder: only its new rows are added
    _run_folder(first, 750, [{"step": 250, "score": 0.5}, {"step": 500, "score": 0.6}, {"step": 750, "score": 0.7}])
    entry = bundle_script.bundle("embedder/bundled", model, "e.bin", {}, weights, run=first)
    assert [row["step"] for row in entry["run"]["campaign"]] == [250, 500, 750]
    assert entry["run"]["campaign"][-1] == {"run": str(first), "step": 750, "score": 0.7}
    assert json.loads((weights / "manifest.json").read_text())["assets"]["embedder/bundled"] == entry
