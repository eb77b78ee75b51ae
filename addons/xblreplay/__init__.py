"""xblreplay: recording, semantic replay and validation proxy for the Xbox Live Achievements API."""

from pathlib import Path

__version__ = "0.1.0"

# rules/ lives at the top of the checkout, beside addons/.
DEFAULT_RULES_DIR = Path(__file__).resolve().parents[2] / "rules"
