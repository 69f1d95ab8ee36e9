#!/usr/bin/env bash
# Fetch numbpie's real assets (torchvision Inception-V3, fashion_gan models and images,
# numbpie's frozen graphs) into weights/downloads/, checksummed and resumable.
# Run `scripts/download_data.sh --help` for the asset list; scripts/fetch.py does the work.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"

# Prefer the project's virtualenv (it has gdown), then any python3 on the PATH.
python="${NUMBPIE_PYTHON:-}"
if [[ -z "$python" ]]; then
  for candidate in "$repo/.venv/bin/python" python3 python; do
    if command -v "$candidate" >/dev/null 2>&1 \
      && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 8))' 2>/dev/null; then
      python="$candidate"
      break
    fi
  done
fi
if [[ -z "$python" ]]; then
  echo "error: download_data.sh needs Python 3.8 or newer; install python3 (or set NUMBPIE_PYTHON) and run it again." >&2
  exit 2
fi

exec "$python" "$here/fetch.py" "$@"
