"""The progress bar of a long generation: rich's, on stderr, only when stderr is a terminal or
the caller asks for it; otherwise nothing at all (output files never see it)."""

from __future__ import annotations

import sys
from types import TracebackType


class Bar:
    """``advance(n)`` entries made, ``describe(text)`` the step under way; a no-op when off."""

    def __init__(self, total: int, shown: bool | None = None) -> None:
        self._progress = None
        if shown is None:
            shown = sys.stderr.isatty()
        if shown:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            console = Console(file=sys.stderr, force_terminal=True)
            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), console=console, transient=False)
            self._task = self._progress.add_task("catalogue", total=total)

    def __enter__(self) -> "Bar":
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()

    def advance(self, count: int) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, count)

    def describe(self, text: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=text)
