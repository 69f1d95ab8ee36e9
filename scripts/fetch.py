"""Fetch the real assets listed in weights/manifest.json; scripts/download_data.sh runs this.

Every file goes to `<dest>/<file>.part` (resumed with HTTP Range on the next try), is checked
against its sha256, then renamed into place. A hash the manifest does not pin is checked
against, or else recorded in, the lock file (trust on first use). Zips are unpacked after.
Only the standard library is used for HTTP, so no curl is needed; gdown fetches Google Drive.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import shlex
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
MANIFEST = Path(os.environ.get("NUMBPIE_MANIFEST", REPO / "weights" / "manifest.json"))
LOCK = Path(os.environ.get("NUMBPIE_LOCK", REPO / "weights" / "lock.json"))
DEST = Path(os.environ.get("NUMBPIE_DOWNLOADS", REPO / "weights" / "downloads"))

# group -> (variable that replaces the base URL, default base URL); the manifest holds full
# URLs, and a set variable swaps its group's default prefix for its own value.
BASES = {
    "torchvision": ("NUMBPIE_TORCHVISION_URL", "https://download.pytorch.org/models"),
    "fashion_gan": ("NUMBPIE_FASHION_GAN_URL", "https://s3.eu-central-1.amazonaws.com/fashion-gan"),
}
# When set, every asset (Google Drive ones too) comes from <NUMBPIE_BASE_URL>/<file>: a mirror.
BASE_URL_VAR = "NUMBPIE_BASE_URL"
GDRIVE_FOLDER_VAR = "NUMBPIE_GDRIVE_FOLDER"  # replaces the manifest's Drive folder id
GDOWN_VAR = "NUMBPIE_GDOWN"  # the gdown command to run (default: this python -m gdown)
CHUNK = 1 << 16
# How gdown's (requests') errors read when the machine has no network at all.
OFFLINE_SIGNS = ("failed to resolve", "name resolution", "name or service not known",
                 "connection refused", "failed to establish", "network is unreachable")


class FetchError(Exception):
    """A failure the user can act on; the message says what to do."""


class Offline(FetchError):
    """The server cannot be reached at all (no route, no DNS, connection refused)."""


class Truncated(FetchError):
    """The transfer stopped early; the .part file is kept so the next try resumes."""


# ---------------------------------------------------------------- manifest and selection


def load_assets(path: Path = MANIFEST) -> dict[str, dict]:
    """The manifest entries that can be downloaded (they have a url or a Google Drive id)."""
    try:
        assets = json.loads(path.read_text())["assets"]
    except (OSError, ValueError, KeyError) as error:
        raise FetchError(f"Cannot read the asset list in {path} ({error}); restore it from git.") from None
    return {k: v for k, v in assets.items() if "file" in v and _has_source(v)}


def _has_source(item: dict) -> bool:
    return any(item.get(field) for field in ("url", "gdrive_id", "gdrive_folder"))


def group(item: dict) -> str:
    """The group an asset belongs to (`--only GROUP` selects all of it)."""
    if "group" in item:
        return item["group"]
    for name, (_, default) in BASES.items():
        if item.get("url", "").startswith(default + "/"):
            return name
    return item["kind"]


def select(assets: dict[str, dict], only: list[str]) -> list[str]:
    """Asset keys matching `only` (keys, groups or kinds); all of them when `only` is empty."""
    if not only:
        return list(assets)
    keys = []
    for name in only:
        hits = [k for k, v in assets.items() if name in (k, group(v), v["kind"])]
        if not hits:
            choices = sorted(set(assets) | {group(v) for v in assets.values()})
            raise FetchError(f"No asset or group called {name!r}; choose from: {', '.join(choices)}.")
        keys += [k for k in hits if k not in keys]
    return keys


def url_of(item: dict) -> str | None:
    """The HTTP URL to fetch from after the environment overrides, or None for Google Drive."""
    mirror = os.environ.get(BASE_URL_VAR)
    if mirror:
        return f"{mirror.rstrip('/')}/{item['file']}"
    url = item.get("url")
    for var, default in BASES.values():
        if url and os.environ.get(var) and url.startswith(default + "/"):
            return os.environ[var].rstrip("/") + url[len(default):]
    return url


def describe_source(item: dict) -> str:
    url = url_of(item)
    if url:
        return url
    if item.get("gdrive_id"):
        return f"Google Drive file {item['gdrive_id']} (gdown)"
    return f"Google Drive folder {_folder_id(item)}, file {Path(item['file']).name} (gdown)"


def human(size: int | None) -> str:
    if size is None:
        return "size unknown"
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000


def help_text(assets: dict[str, dict], dest: Path) -> str:
    lines = [
        "usage: scripts/download_data.sh [--only NAME]... [--dest DIR] [--retries N] [--help]",
        "",
        "Fetch numbpie's real assets (listed in weights/manifest.json), check their sha256 and",
        "unpack the zips. A file is downloaded to <file>.part, resumed if interrupted, checked,",
        "then renamed. Files already present and valid are skipped. Hashes the manifest does not",
        f"pin are recorded in {LOCK} on first download and checked from then on.",
        "",
        "options:",
        "  --only NAME   an asset key, a group or a kind below (repeatable); default: everything",
        f"  --dest DIR    where the files go (default: {DEST}; the loaders look there)",
        "  --retries N   resume an interrupted transfer up to N more times (default: 3)",
        "",
        "environment: NUMBPIE_TORCHVISION_URL, NUMBPIE_FASHION_GAN_URL replace those base URLs;",
        "  NUMBPIE_BASE_URL serves every asset from <url>/<file> (a mirror of a downloads folder);",
        "  NUMBPIE_GDRIVE_FOLDER replaces the Google Drive folder id; NUMBPIE_MANIFEST, NUMBPIE_LOCK.",
        "",
        "assets:",
    ]
    for key, item in assets.items():
        where = dest / item["file"]
        lines.append(f"  {key}  [group {group(item)}]  {human(item.get('size'))}")
        lines.append(f"      -> {where}")
        if item.get("unpack_to"):
            lines.append(f"      unpacked to {dest / item['unpack_to']}/")
        lines.append(f"      from {describe_source(item)}")
    return "\n".join(lines)


# ---------------------------------------------------------------- hashes and the lock file


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_lock(path: Path = LOCK) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError:
        raise FetchError(f"{path} is not valid JSON; delete it and run the script again.") from None


def write_lock(lock: dict, path: Path = LOCK) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(lock, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def check(key: str, item: dict, path: Path, lock: dict) -> str:
    """Raise FetchError if `path` is not the asset; else say how it was checked (may update `lock`)."""
    size = path.stat().st_size
    if item.get("size") and size != item["size"]:
        raise FetchError(f"{item['file']} has {size} bytes, the manifest says {item['size']}")
    digest = sha256(path)
    if item.get("sha256"):
        if digest != item["sha256"]:
            raise FetchError(f"{item['file']} has sha256 {digest}, the manifest pins {item['sha256']}")
        return "sha256 matches the manifest"
    if key in lock:
        if digest != lock[key]["sha256"]:
            raise FetchError(
                f"{item['file']} has sha256 {digest}, but {LOCK} recorded {lock[key]['sha256']} "
                f"on first download (if the upstream file really changed, delete that entry)"
            )
        return f"sha256 matches {LOCK.name}"
    lock[key] = {"file": item["file"], "sha256": digest, "size": size, "recorded": time.strftime("%Y-%m-%d")}
    return f"sha256 not pinned in the manifest; recorded {digest} in {LOCK}"


# ---------------------------------------------------------------- transfers


def _progress(name: str, done: int, total: int | None) -> None:
    if sys.stderr.isatty():
        of = f" of {human(total)}" if total else ""
        print(f"\r  {name}: {human(done)}{of}   ", end="", file=sys.stderr, flush=True)


def _offline(url: str, reason: object) -> Offline:
    host = urlsplit(url).hostname
    return Offline(f"cannot reach {host} ({reason})")


def http_get(url: str, part: Path, timeout: float = 30.0) -> None:
    """One attempt to complete `part` from `url`, resuming from its current size."""
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "numbpie-download/1"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # the .part is not a prefix of this file: start over
            part.unlink()
            return http_get(url, part, timeout)
        raise FetchError(f"{url} answered HTTP {error.code} {error.reason}") from None
    except urllib.error.URLError as error:
        if isinstance(error.reason, ssl.SSLError):
            raise FetchError(f"the TLS connection to {url} failed ({error.reason}); check the "
                             "system certificates or the https_proxy setting") from None
        raise _offline(url, error.reason) from None
    except (ConnectionError, http.client.HTTPException) as error:  # reached, then hung up
        raise Truncated(f"{urlsplit(url).hostname} closed the connection ({error!r})") from None
    except TimeoutError as error:
        raise _offline(url, error) from None
    with response:
        if offset and response.status != 206:  # the server ignored Range: take the whole file
            offset = 0
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        done = offset
        try:
            with open(part, "ab" if offset else "wb") as out:
                while block := response.read(CHUNK):
                    out.write(block)
                    done += len(block)
                    _progress(part.name[:-5], done, total)
        except (http.client.HTTPException, ConnectionError, TimeoutError) as error:
            raise Truncated(f"the transfer of {url} stopped at {done} bytes ({error})") from None
        finally:
            if sys.stderr.isatty():
                print(file=sys.stderr)
    if total is not None and done < total:
        raise Truncated(f"the transfer of {url} stopped at {done} of {total} bytes")


def _folder_id(item: dict) -> str:
    return os.environ.get(GDRIVE_FOLDER_VAR) or item["gdrive_folder"]


def _gdown() -> list[str]:
    if os.environ.get(GDOWN_VAR):
        return shlex.split(os.environ[GDOWN_VAR])
    try:
        import gdown  # noqa: F401
    except ImportError:
        raise FetchError(
            f"gdown is needed for Google Drive files; run `{sys.executable} -m pip install gdown` "
            "(or use the repository's .venv) and try again"
        ) from None
    return [sys.executable, "-m", "gdown"]


def gdrive_get(item: dict, part: Path) -> None:
    """Fetch a Google Drive asset with gdown (resumable) and leave it at `part`."""
    name = Path(item["file"]).name
    if item.get("gdrive_id"):
        command = _gdown() + ["--continue", item["gdrive_id"], "-O", str(part)]
        where = f"https://drive.google.com/uc?id={item['gdrive_id']}"
    else:
        # Only the folder id is public, so gdown fetches the folder into a staging folder
        # (kept between runs so --continue resumes) and we take the file we want from it.
        stage = part.parent / ".gdrive"
        stage.mkdir(parents=True, exist_ok=True)
        command = _gdown() + ["--continue", "--folder", _folder_id(item), "-O", str(stage)]
        where = f"https://drive.google.com/drive/folders/{_folder_id(item)}"
    found = next(part.parent.glob(f".gdrive/**/{name}"), None) if not item.get("gdrive_id") else None
    if found is None:
        result = subprocess.run(command, stderr=subprocess.PIPE, text=True)
        if result.returncode != 0:
            lines = [line for line in result.stderr.splitlines() if "report issues" not in line]
            said = " ".join(" ".join(lines).split()) or "no message"
            sign = next((s for s in OFFLINE_SIGNS if s in said.lower()), None)
            if sign:
                raise _offline("https://drive.google.com", f"gdown: {sign}")
            said = said if len(said) <= 240 else said[:240] + "..."
            raise FetchError(
                f"gdown could not fetch {name} ({said}); if Google Drive refuses it (quota, "
                f"permissions), download {name} from {where} in a browser and put it at "
                f"{part.with_suffix('')}"
            )
        if item.get("gdrive_id"):
            return
        found = next(part.parent.glob(f".gdrive/**/{name}"), None)
        if found is None:
            raise FetchError(f"the Google Drive folder {where} has no file called {name}; check the manifest entry")
    os.replace(found, part)


def fetch_file(key: str, item: dict, dest: Path, lock: dict, retries: int) -> str:
    """Make `<dest>/<file>` a checked copy of the asset; return what was done."""
    final = dest / item["file"]
    for folder in item.get("also_found_in", []) if not final.exists() else []:
        other = Path(os.path.expandvars(os.path.expanduser(folder))) / final.name
        if other.is_file():
            try:
                return f"found at {other} (the loaders use it there), {check(key, item, other, lock)}"
            except FetchError as error:
                print(f"  ignoring {other}: {error}", file=sys.stderr)
    if final.exists():
        try:
            return f"present, {check(key, item, final, lock)}"
        except FetchError as error:
            final.unlink()
            print(f"  {error}; removed it, downloading again", file=sys.stderr)
    part = final.with_name(final.name + ".part")
    part.parent.mkdir(parents=True, exist_ok=True)
    resumed = part.exists() and part.stat().st_size > 0
    url = url_of(item)
    for attempt in range(retries + 1):
        try:
            http_get(url, part) if url else gdrive_get(item, part)
            if item.get("size") and part.stat().st_size < item["size"]:
                raise Truncated(f"{part.name} has {part.stat().st_size} of {item['size']} bytes")
            break
        except Truncated as error:
            if attempt == retries:
                raise Truncated(f"{error}; {part} is kept: run the script again to resume") from None
            print(f"  {error}; resuming", file=sys.stderr)
            time.sleep(min(2 ** attempt, 10))
    try:
        how = check(key, item, part, lock)
    except FetchError as error:
        part.unlink()
        raise FetchError(
            f"{error}: rejected and removed. Run the script again; if it fails the same way, the "
            "file on the server is not the one recorded, so do not use it"
        ) from None
    os.replace(part, final)
    return ("resumed and " if resumed else "") + f"downloaded {human(final.stat().st_size)}, {how}"


# ---------------------------------------------------------------- zips


def _safe_member(name: str) -> bool:
    """False for macOS resource forks and for paths that would land outside the target."""
    parts = name.replace("\\", "/").split("/")
    return not name.startswith(("/", "__MACOSX/")) and ".." not in parts and ":" not in parts[0]


def unpack(archive: Path, target: Path) -> str:
    """Unzip `archive` into `target` (dropping a single top folder named like `target`)."""
    marker = target / ".unpacked-from"
    digest = sha256(archive)
    if marker.exists() and marker.read_text().strip() == digest:
        return f"already unpacked in {target}"
    tmp = target.with_name(f".{target.name}.unpacking")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.infolist() if _safe_member(m.filename)]
            tops = {m.filename.split("/", 1)[0] for m in members}
            strip = target.name + "/" if tops == {target.name} else ""
            for member in members:
                name = member.filename[len(strip):]
                if not name:
                    continue  # the top folder itself
                out = tmp / name
                if member.is_dir():
                    out.mkdir(parents=True, exist_ok=True)
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst, CHUNK)
    except zipfile.BadZipFile:
        shutil.rmtree(tmp, ignore_errors=True)
        raise FetchError(f"{archive} is not a valid zip; delete it and run the script again") from None
    (tmp / marker.name).write_text(digest + "\n")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return f"unpacked into {target}"


# ---------------------------------------------------------------- main


def offline_help(names: list[str], dest: Path) -> str:
    only = "".join(f" --only {name}" for name in names)
    here = "" if dest == DEST.resolve() else f" --dest {dest}"
    return "\n".join([
        "This machine cannot reach the download servers (no internet access). To install the assets by hand:",
        "  1. on a machine with internet access, in a clone of numbpie, run:",
        f"       scripts/download_data.sh{only} --dest /tmp/numbpie-downloads",
        f"  2. copy everything in /tmp/numbpie-downloads/ into {dest}/ on this machine, e.g.:",
        f"       rsync -a --partial /tmp/numbpie-downloads/ {socket.gethostname()}:{dest}/",
        f"  3. run `scripts/download_data.sh{only}{here}` here again: it checks the copied",
        "     files, records their sha256 and unpacks the zips without going online.",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--only", action="append", default=[])
    parser.add_argument("--dest", type=Path, default=DEST)
    parser.add_argument("--retries", type=int, default=3)
    parser.add_argument("-h", "--help", action="store_true")
    args, unknown = parser.parse_known_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # progress lines and errors stay in order in logs
    try:
        assets = load_assets()
        if args.help:
            print(help_text(assets, args.dest.resolve()))
            return 0
        if unknown:
            raise FetchError(f"Unknown option {unknown[0]}; run scripts/download_data.sh --help for the options.")
        keys = select(assets, args.only)
        lock = read_lock()
        saved = dict(lock)
    except FetchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    dest = args.dest.resolve()
    failed, offline = [], []
    for key in keys:
        item = assets[key]
        print(f"{key} -> {dest / item['file']}")
        try:
            print(f"  {fetch_file(key, item, dest, lock, args.retries)}")
            if item.get("unpack_to"):
                print(f"  {unpack(dest / item['file'], dest / item['unpack_to'])}")
        except Offline as error:
            print(f"  error: {error}", file=sys.stderr)
            offline.append(key)
        except FetchError as error:
            print(f"  error: {error}", file=sys.stderr)
            failed.append(key)
        finally:
            if lock != saved:
                write_lock(lock)
                saved = dict(lock)
    if offline:
        # Name the assets one by one only when some of the selection did work.
        named = args.only if set(offline) == set(keys) else offline
        print("\n" + offline_help(named, dest), file=sys.stderr)
    if failed:
        print(f"\nerror: not installed: {', '.join(failed)} (see the messages above).", file=sys.stderr)
    if failed or offline:
        return 1
    print(f"All {len(keys)} asset(s) are in {dest}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
