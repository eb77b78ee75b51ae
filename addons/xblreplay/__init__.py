"""xblreplay: recording, semantic replay and validation proxy for the Xbox Live Achievements API."""

from pathlib import Path

__version__ = "0.1.0"

_HERE = Path(__file__).resolve().parent


def rules_dir() -> Path:
    """The rules directory the package was shipped with: ``xblreplay/rules`` inside an installed
    package (a wheel carries it as package data), else ``rules/`` at the top of the checkout
    beside ``addons/`` (a source tree or an editable install)."""
    for candidate in (_HERE / "rules", _HERE.parents[1] / "rules"):
        if (candidate / "achievements.openapi.yaml").is_file():
            return candidate
    return _HERE / "rules"


DEFAULT_RULES_DIR = rules_dir()
