"""`python -m numbpie serve` in a subprocess on a free loopback port: for the HTTP tests, load benchmark and fuzzer."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

__all__ = ["free_port", "running_server"]

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as reply:
            return reply.status == 200
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def running_server(args: list[str] = (), env: dict | None = None, log: str | Path | None = None,
                   start_timeout: float = 600) -> Iterator[str]:
    """Start `numbpie serve ARGS` (models load first: allow minutes), yield its base URL once /health answers.

    The server's output goes to `log` (default: discarded); it is stopped on exit, killed if it lingers.
    """
    port = free_port()
    command = [sys.executable, "-m", "numbpie", "serve", "--port", str(port), *args]
    if log:
        Path(log).parent.mkdir(parents=True, exist_ok=True)
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **(env or {})},
                               stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout
        while not _healthy(url):
            if process.poll() is not None:
                raise RuntimeError(f"numbpie serve exited with code {process.returncode}"
                                   + (f"; see {log}" if log else ""))
            if time.monotonic() > deadline:
                raise RuntimeError(f"numbpie serve did not answer /health within {start_timeout:g} s")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if log:
            out.close()
