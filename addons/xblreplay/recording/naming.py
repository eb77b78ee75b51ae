"""Which cassette file an exchange is recorded in, from the one reading of its request."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..model import RequestCheck

MAX_NAME = 120  # longest title-list file name; longer lists are named by their hash


def cassette_path(cassette_dir: Path, check: RequestCheck) -> Path:
    """Where an exchange is recorded, from the one reading of its request: a user path goes
    to ``recorded/<xuid>/<sorted titleIds joined with _ | all>.yaml``, anything else (other
    paths, a malformed titleId) to ``recorded/other.yaml``."""
    xuid = check.path_params.get("xuid")
    if xuid is None or check.bad_title_ids:
        return cassette_dir / "recorded" / "other.yaml"
    if check.title_ids is None:
        return cassette_dir / "recorded" / str(xuid) / "all.yaml"
    name = "_".join(map(str, sorted(set(check.title_ids))))
    if len(name) > MAX_NAME:
        name = f"titles-{len(set(check.title_ids))}-{hashlib.sha256(name.encode()).hexdigest()[:16]}"
    return cassette_dir / "recorded" / str(xuid) / (name + ".yaml")
