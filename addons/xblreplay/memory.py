"""The proxy process's memory after a load: its resident size, the freed heap handed back to the
system, and a loaded dataset copied into fresh memory when the load left it scattered.

A large cassette is parsed into millions of small objects, and the dataset built from them keeps
tens of thousands of small objects of its own (per title: its tables, windows, identities). Those
are allocated while the parsed document is still alive, among its objects; when the document is
freed, each of them keeps the memory block it sits in from going back to the system. A 1M-entry
cassette with rarity and icons (355 MB) left the process resident at 1.3 GB, of which the dataset
held about 300 MB. Copying the dataset once (pickled and read back, here in the same process)
puts its objects side by side in fresh memory and lets every emptied block go.
"""

from __future__ import annotations

import ctypes
import gc
import os
import pickle
from typing import Any

# Copy when the load grew the process by more than this many times the bytes of cassettes
# read, and by at least COPY_MIN_GROWTH: below, the copy would cost more start-up than it saves.
COPY_OVER = 3
COPY_MIN_GROWTH = 64 * 2**20


def resident() -> int | None:
    """The process's resident size in bytes (None where /proc is not there)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def release_free() -> None:
    """Hands freed heap pages back to the system: glibc keeps them mapped, which left a
    1M-achievement load resident at 1.6x what it holds. Elsewhere (no ``malloc_trim``) nothing
    is done."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def scattered(before: int | None, loaded_bytes: int) -> bool:
    """Whether a load that began at resident size ``before`` and read ``loaded_bytes`` of
    cassettes left the process big enough, after :func:`release_free`, to be worth a copy."""
    after = None if before is None else resident()
    if after is None:
        return False
    grown = after - before
    return grown >= COPY_MIN_GROWTH and grown > COPY_OVER * loaded_bytes


def copy_fresh(holder: Any, name: str, detached: tuple[str, ...] = ()) -> None:
    """Replaces ``holder.<name>`` by a copy of it made in fresh memory (the original is freed
    first). ``detached``: attributes of the object that are not copied (a bound method of a
    validator, say) but put back on the copy as they were."""
    value = getattr(holder, name)
    kept = {attr: getattr(value, attr) for attr in detached}
    enabled = gc.isenabled()
    gc.disable()  # a large copy, and no cycle in it: collections would only rescan it
    try:
        for attr in kept:
            setattr(value, attr, None)
        try:
            data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        finally:
            for attr, v in kept.items():
                setattr(value, attr, v)
        setattr(holder, name, None)
        del value  # its small objects' memory goes back as it is freed; its large buffers are reused
        copy = pickle.loads(data)
        del data
    finally:
        if enabled:
            gc.enable()
    for attr, v in kept.items():
        setattr(copy, attr, v)
    setattr(holder, name, copy)
