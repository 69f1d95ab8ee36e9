"""scripts/download_data.sh against a local HTTP server that honours Range and can cut transfers."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import socket
import subprocess
import sys
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "download_data.sh"
TV = "https://download.pytorch.org/models"
FG = "https://s3.eu-central-1.amazonaws.com/fashion-gan"
PAYLOAD = bytes(range(256)) * 40  # 10 240 bytes


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Handler(BaseHTTPRequestHandler):
    """Serves `server.files`; honours `Range: bytes=N-`; `server.cut[path] = n` stops after n bytes once."""

    def do_GET(self):
        server = self.server
        server.log.append((self.path, self.headers.get("Range")))
        body = server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match and server.ranges:
            start = int(match.group(1))
            if start >= len(body):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        cut = server.cut.pop(self.path, None)
        self.wfile.write(body[start:] if cut is None else body[start:start + cut])
        if cut is not None:
            self.close_connection = True  # hang up mid-body: the client sees a short transfer

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.files, httpd.cut, httpd.log, httpd.ranges = {}, {}, [], True
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


class World:
    """A temporary manifest, lock file and destination wired to the local server."""

    def __init__(self, tmp_path: Path, server):
        self.tmp, self.server = tmp_path, server
        self.manifest, self.lock, self.dest = tmp_path / "manifest.json", tmp_path / "lock.json", tmp_path / "dl"
        self.assets: dict[str, dict] = {}
        self.env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower() and not k.startswith("NUMBPIE_")}
        self.env.update(
            NUMBPIE_MANIFEST=str(self.manifest),
            NUMBPIE_LOCK=str(self.lock),
            NUMBPIE_PYTHON=sys.executable,
            NUMBPIE_TORCHVISION_URL=f"{server.url}/tv",
            NUMBPIE_FASHION_GAN_URL=f"{server.url}/fg",
        )

    def add(self, key: str, file: str, url: str | None = None, data: bytes | None = None, **fields):
        """Register an asset; `data` is served at the local path its (overridden) url maps to."""
        self.assets[key] = {"kind": key.split("/")[0], "file": file, **({"url": url} if url else {}), **fields}
        if data is not None and url:
            local = url.replace(TV, "/tv").replace(FG, "/fg")
            self.server.files[local] = data
        self.manifest.write_text(json.dumps({"format": 1, "assets": self.assets}))

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", str(SCRIPT), "--dest", str(self.dest), *args],
            env=self.env, capture_output=True, text=True, timeout=120,
        )


@pytest.fixture
def world(tmp_path, server):
    return World(tmp_path, server)


def test_good_file_is_accepted_and_its_unpinned_hash_recorded(world):
    world.add("embedder/x", "x.pth", f"{TV}/x.pth", PAYLOAD, sha256=None, size=len(PAYLOAD))
    result = world.run()
    assert result.returncode == 0, result.stderr
    assert (world.dest / "x.pth").read_bytes() == PAYLOAD
    assert not (world.dest / "x.pth.part").exists()
    assert json.loads(world.lock.read_text())["embedder/x"]["sha256"] == sha(PAYLOAD)
    assert "not pinned" in result.stdout and "recorded" in result.stdout

    requests = len(world.server.log)
    again = world.run()
    assert again.returncode == 0, again.stderr
    assert "present" in again.stdout
    assert len(world.server.log) == requests  # a valid file is not fetched again


def test_pinned_good_file_is_accepted(world):
    world.add("embedder/x", "sub/x.pth", f"{TV}/x.pth", PAYLOAD, sha256=sha(PAYLOAD))
    result = world.run()
    assert result.returncode == 0, result.stderr
    assert (world.dest / "sub" / "x.pth").read_bytes() == PAYLOAD
    assert "matches the manifest" in result.stdout
    assert not world.lock.exists()  # pinned hashes need no lock entry


def test_wrong_checksum_is_rejected_and_the_file_removed(world):
    world.add("embedder/x", "x.pth", f"{TV}/x.pth", PAYLOAD, sha256=sha(b"something else"))
    result = world.run()
    assert result.returncode == 1
    assert "rejected and removed" in result.stderr
    assert not (world.dest / "x.pth").exists() and not (world.dest / "x.pth.part").exists()


def test_hash_differing_from_the_lock_is_rejected(world):
    world.add("embedder/x", "x.pth", f"{TV}/x.pth", PAYLOAD, sha256=None)
    world.lock.write_text(json.dumps({"embedder/x": {"file": "x.pth", "sha256": sha(b"first seen")}}))
    result = world.run()
    assert result.returncode == 1
    assert "lock.json recorded" in result.stderr and "rejected and removed" in result.stderr
    assert not (world.dest / "x.pth").exists()


def test_corrupt_file_already_present_is_downloaded_again(world):
    world.add("embedder/x", "x.pth", f"{TV}/x.pth", PAYLOAD, sha256=sha(PAYLOAD))
    world.dest.mkdir()
    (world.dest / "x.pth").write_bytes(b"corrupt")
    result = world.run()
    assert result.returncode == 0, result.stderr
    assert "downloading again" in result.stderr
    assert (world.dest / "x.pth").read_bytes() == PAYLOAD


def test_copy_in_a_cache_folder_is_used_instead_of_downloading(world):
    cache = world.tmp / "torch_cache"
    cache.mkdir()
    (cache / "x.pth").write_bytes(PAYLOAD)
    world.add("embedder/x", "x.pth", f"{TV}/x.pth", PAYLOAD, sha256=sha(PAYLOAD), also_found_in=[str(cache)])
    result = world.run()
    assert result.returncode == 0, result.stderr
    assert f"found at {cache / 'x.pth'}" in result.stdout
    assert world.server.log == [] and not (world.dest / "x.pth").exists()


def test_truncated_transfer_is_resumed_on_the_next_run(world):
    world.add("embedder/x", "x.pth", f"{TV}/x.pth", PAYLOAD, sha256=sha(PAYLOAD))
    world.server.cut["/tv/x.pth"] = 3000
    first = world.run("--retries", "0")
    assert first.returncode == 1
    assert "run the script again to resume" in first.stderr
    assert (world.dest / "x.pth.part").read_bytes() == PAYLOAD[:3000]
    assert not (world.dest / "x.pth").exists()

    second = world.run("--retries", "0")
    assert second.returncode == 0, second.stderr
    assert world.server.log[-1] == ("/tv/x.pth", "bytes=3000-")
    assert (world.dest / "x.pth").read_bytes() == PAYLOAD
    assert "resumed" in second.stdout


def test_truncated_transfer_is_retried_within_one_run(world):
    world.add("embedder/x", "x.pth", f"{TV}/x.pth", PAYLOAD, sha256=sha(PAYLOAD))
    world.server.cut["/tv/x.pth"] = 5000
    result = world.run()
    assert result.returncode == 0, result.stderr
    assert world.server.log == [("/tv/x.pth", None), ("/tv/x.pth", "bytes=5000-")]
    assert (world.dest / "x.pth").read_bytes() == PAYLOAD


def test_server_ignoring_range_restarts_from_zero(world):
    world.add("embedder/x", "x.pth", f"{TV}/x.pth", PAYLOAD, sha256=sha(PAYLOAD))
    world.server.ranges = False
    world.dest.mkdir()
    (world.dest / "x.pth.part").write_bytes(PAYLOAD[:100])
    result = world.run()
    assert result.returncode == 0, result.stderr
    assert (world.dest / "x.pth").read_bytes() == PAYLOAD


def test_missing_file_gives_a_clear_error(world):
    world.add("embedder/x", "x.pth", f"{TV}/x.pth", None, sha256=None)
    world.add("embedder/y", "y.pth", f"{TV}/y.pth", PAYLOAD, sha256=None)
    result = world.run()
    assert result.returncode == 1
    assert f"{world.server.url}/tv/x.pth answered HTTP 404" in result.stderr
    assert "not installed: embedder/x" in result.stderr
    assert not (world.dest / "x.pth").exists() and not (world.dest / "x.pth.part").exists()
    assert (world.dest / "y.pth").read_bytes() == PAYLOAD  # one failure does not stop the rest


def test_offline_says_what_to_run_where(world):
    with socket.socket() as probe:  # a port nobody listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    world.env["NUMBPIE_TORCHVISION_URL"] = f"http://127.0.0.1:{port}/tv"
    world.add("embedder/x", "x.pth", f"{TV}/x.pth", PAYLOAD, sha256=None)
    world.add("data/m", "m.bin", f"{FG}/m.bin", PAYLOAD, sha256=None)  # still served
    result = world.run()
    assert result.returncode == 1
    assert (world.dest / "m.bin").read_bytes() == PAYLOAD
    assert "cannot reach 127.0.0.1" in result.stderr
    assert "no internet access" in result.stderr
    assert "on a machine with internet access" in result.stderr
    assert "scripts/download_data.sh --only embedder/x --dest /tmp/numbpie-downloads" in result.stderr
    assert f"into {world.dest.resolve()}/ on this machine" in result.stderr
    assert f"run `scripts/download_data.sh --only embedder/x --dest {world.dest.resolve()}` here again" in result.stderr
    assert not (world.dest / "x.pth").exists()

    alone = world.run("--only", "torchvision")  # everything selected is offline: repeat the selection
    assert "scripts/download_data.sh --only torchvision --dest /tmp/numbpie-downloads" in alone.stderr


def test_help_lists_every_asset_with_size_and_destination(world):
    world.add("embedder/x", "x.pth", f"{TV}/x.pth", sha256=None, size=108857766)
    world.add("data/imgs", "fashion_gan/images.zip", f"{FG}/images.zip", sha256=None, size=None,
              group="fashion_gan", unpack_to="fashion_gan/images")
    world.add("embedder/random", "unused", sha256=None)  # no url: not downloadable, not listed
    result = world.run("--help")
    assert result.returncode == 0, result.stderr
    dest = world.dest.resolve()
    assert "embedder/x  [group torchvision]  108.9 MB" in result.stdout
    assert f"-> {dest / 'x.pth'}" in result.stdout
    assert "data/imgs  [group fashion_gan]  size unknown" in result.stdout
    assert f"unpacked to {dest / 'fashion_gan' / 'images'}/" in result.stdout
    assert f"from {world.server.url}/fg/images.zip" in result.stdout  # the overridden base URL
    assert "embedder/random" not in result.stdout
    assert world.server.log == []  # --help does not go online


def test_help_with_the_real_manifest_lists_the_real_assets():
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBPIE_")}
    result = subprocess.run(["bash", str(SCRIPT), "--help"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for key in ("embedder/imagenet", "data/fashion_gan_models", "data/fashion_gan_images",
                "detector/numbpie_ssd", "data/numbpie_inception_graph"):
        assert key in result.stdout
    assert "https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth" in result.stdout
    assert "weights/downloads/fashion_gan/models.zip" in result.stdout


def test_only_selects_a_group_and_rejects_unknown_names(world):
    world.add("embedder/x", "x.pth", f"{TV}/x.pth", PAYLOAD, sha256=None)
    world.add("data/m", "fashion_gan/m.bin", f"{FG}/m.bin", PAYLOAD[:10], sha256=None, group="fashion_gan")
    result = world.run("--only", "fashion_gan")
    assert result.returncode == 0, result.stderr
    assert [path for path, _ in world.server.log] == ["/fg/m.bin"]
    assert not (world.dest / "x.pth").exists()

    bad = world.run("--only", "nope")
    assert bad.returncode == 2
    assert "No asset or group called 'nope'" in bad.stderr and "fashion_gan" in bad.stderr


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def test_zip_is_unpacked_into_its_folder_once(world):
    archive = _zip({"models/stargan/fit.pth": b"fit", "models/pix2pix_models.pth": b"p2p",
                    "__MACOSX/junk": b"", "../escape.txt": b"no"})
    world.add("data/m", "fashion_gan/models.zip", f"{FG}/models.zip", archive, sha256=sha(archive),
              group="fashion_gan", unpack_to="fashion_gan/models")
    result = world.run()
    assert result.returncode == 0, result.stderr
    models = world.dest / "fashion_gan" / "models"
    assert (models / "stargan" / "fit.pth").read_bytes() == b"fit"
    assert (models / "pix2pix_models.pth").read_bytes() == b"p2p"
    assert not (world.dest / "fashion_gan" / "escape.txt").exists() and not (models / "__MACOSX").exists()
    assert "already unpacked" in world.run().stdout


def test_base_url_mirror_serves_google_drive_assets(world):
    world.add("detector/g", "numbpie/graph.pb", None, sha256=sha(PAYLOAD), gdrive_folder="FOLDER")
    world.server.files["/mirror/numbpie/graph.pb"] = PAYLOAD
    world.env["NUMBPIE_BASE_URL"] = f"{world.server.url}/mirror"
    result = world.run()
    assert result.returncode == 0, result.stderr
    assert (world.dest / "numbpie" / "graph.pb").read_bytes() == PAYLOAD


FAKE_GDOWN = """
import json, pathlib, sys
args = sys.argv[1:]
pathlib.Path({log!r}).write_text(json.dumps(args))
if {fail!r}:
    print({fail!r}, file=sys.stderr)
    sys.exit(1)
out = pathlib.Path(args[args.index("-O") + 1]) / "numbpie_models"
out.mkdir(parents=True, exist_ok=True)
(out / "graph.pb").write_bytes(bytes(range(256)) * 40)
(out / "other.pb").write_bytes(b"other")
"""


@pytest.mark.parametrize("fail, expected", [
    ("", None),
    ("Access denied: too many users have viewed or downloaded this file", "in a browser"),
    ("Failed to establish a new connection: [Errno -3] Temporary failure in name resolution",
     "no internet access"),
])
def test_google_drive_folder_goes_through_gdown(world, fail, expected):
    log = world.tmp / "gdown_args.json"
    fake = world.tmp / "fake_gdown.py"
    fake.write_text(FAKE_GDOWN.format(log=str(log), fail=fail))
    world.env["NUMBPIE_GDOWN"] = f"{sys.executable} {fake}"
    world.env["NUMBPIE_GDRIVE_FOLDER"] = "OVERRIDDEN"
    world.add("detector/g", "numbpie/graph.pb", None, sha256=sha(PAYLOAD), gdrive_folder="FOLDER")
    result = world.run()
    args = json.loads(log.read_text())
    assert args[:3] == ["--continue", "--folder", "OVERRIDDEN"]
    if expected is None:
        assert result.returncode == 0, result.stderr
        assert (world.dest / "numbpie" / "graph.pb").read_bytes() == PAYLOAD
    else:
        assert result.returncode == 1
        assert expected in result.stderr
        assert not (world.dest / "numbpie" / "graph.pb").exists()
