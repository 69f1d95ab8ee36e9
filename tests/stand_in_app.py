"""The demo page with stand-in models: streamlit run tests/stand_in_app.py (browser test, screenshots)."""

import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests import stand_ins  # noqa: E402

stand_ins.install()
runpy.run_path(str(ROOT / "streamlit_app.py"), run_name="__main__")
