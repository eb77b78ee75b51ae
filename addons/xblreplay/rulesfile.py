"""Reading the YAML files of rules/: safe loader (libyaml's when present), one-line errors."""

from __future__ import annotations

import os
from typing import Any

import yaml

SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: str | os.PathLike, error: type[Exception], what: str) -> Any:
    """The document at `path`; an unreadable file or bad YAML raises `error` naming the file."""
    try:
        with open(path, "rb") as fh:
            return yaml.load(fh, Loader=SafeLoader)
    except OSError as e:
        raise error(f"{path}: cannot read {what}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise error(f"{path}: not valid YAML: {e}") from None
