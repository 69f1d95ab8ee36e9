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
