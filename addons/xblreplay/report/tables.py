"""Tables on a terminal or in a pipe: a rich table when the output is a terminal, else plain
aligned text with one line per row (stable and greppable), for both `report` and `show`."""

from __future__ import annotations

import sys
from typing import Callable, Sequence, TextIO

Row = Sequence[str]
WRAPPED_MIN = 12  # the narrowest a column that may fold (a name, a reason) becomes on a terminal


def _one_line(cell: str) -> str:
    """A cell without line breaks or tabs, so a row is one line whatever a name holds."""
    return " ".join(str(cell).split()) if any(c in str(cell) for c in "\r\n\t\v\f") else str(cell)


def plain(columns: Sequence[str], rows: Sequence[Row], title: str | None = None) -> list[str]:
    """The table as lines: an optional ``# title`` line, the header, then one line per row, columns
    padded to their widest cell and parted by two spaces (the last one never padded)."""
    cells = [list(map(_one_line, columns))] + [list(map(_one_line, row)) for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = [f"# {title}"] if title else []
    for r in cells:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r[:-1], widths)) + ("  " if len(r) > 1 else "") + r[-1])
    return lines


def render(columns: Sequence[str], rows: Sequence[Row], *, title: str | None = None,
           out: TextIO | None = None, tty: bool | None = None,
           style: Callable[[Row], str | None] | None = None, numeric: Sequence[str] = (),
           wrap: Sequence[str] = ()) -> None:
    """Write the table to ``out`` (stdout): rich when ``tty`` (default: ``out`` is a terminal),
    else :func:`plain`. ``style``: a rich style for a row (None: the default); ``numeric``: the
    columns aligned right on a terminal; ``wrap``: the columns that may fold over lines when the
    terminal is narrow (ids, counts and times never do)."""
    out = out or sys.stdout
    if tty is None:
        tty = out.isatty()
    if not tty:
        out.write("\n".join(plain(columns, rows, title)) + "\n")
        return
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    # Text cells: a name such as "[Bonus]" is shown as written, never read as rich markup
    cells = [[_one_line(c) for c in row] for row in rows]
    full = [max([len(name)] + [len(r[i]) for r in cells]) for i, name in enumerate(columns)]
    least = [min(w, WRAPPED_MIN) if name in wrap else w for name, w in zip(columns, full)]
    table = Table(title=Text(title) if title else None, title_justify="left", header_style="bold",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    for name, width in zip(columns, least):
        table.add_column(name, justify="right" if name in numeric else "left", overflow="fold", min_width=width)
    for row, text in zip(rows, cells):
        table.add_row(*map(Text, text), style=style(row) if style else None)
    console = Console(file=out, force_terminal=True, highlight=False)
    # ids, counts and times are never cut: on a terminal too narrow for them the lines run on
    console.width = max(console.width, sum(least) + 3 * len(columns))
    console.print(table)
