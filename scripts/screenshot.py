"""Retakes assets/table-mid-run.png, the README's screenshot of the table page mid-run.

    source scripts/env.sh && python scripts/screenshot.py

It starts the app with ``bash scripts/run.sh`` on a scratch database and free ports, so it
runs beside a developer's own server; see tests/support/screenshot.py for what it does.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.screenshot import main

if __name__ == "__main__":
    sys.exit(main())
