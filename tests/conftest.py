"""Shared pytest setup: the package source root is addons/."""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ADDONS = REPO / "addons"
if str(ADDONS) not in sys.path:
    sys.path.insert(0, str(ADDONS))
