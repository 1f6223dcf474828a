"""Text that came from a submission, made harmless where it is shown.

A student controls exception messages, class names and written answers. Shown raw, they can drive the
instructor's terminal (escape sequences clear the screen, retitle the window, hide text) or run as a
formula when a CSV export is opened in a spreadsheet. Every place that shows such text passes it
through one of these functions; HTML is escaped by its template engine instead.
"""
from __future__ import annotations

import re

# C0 and C1 control characters, DEL, and the Unicode bidi overrides that reorder what a reader sees;
# newline and tab are handled by the caller's layout, so they are escaped here too.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# What spreadsheets (Excel, LibreOffice, Google Sheets) read as the start of a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def terminal_text(text: object) -> str:
    """`text` with every control character written as a visible escape (ESC becomes `\\x1b`)."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(text))


def csv_cell(value: object) -> object:
    """A CSV cell that no spreadsheet evaluates: text starting like a formula gets a leading apostrophe
    (OWASP's advice for CSV injection). Numbers are returned unchanged, so negative scores stay numbers."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_row(values) -> list:
    """Every cell of a row through `csv_cell`."""
    return [csv_cell(v) for v in values]


def from_csv_cell(text: str) -> str:
    """What `csv_cell` was given, for a cell read back from a sheet this tool wrote (a review sheet
    comes back with the instructor's points): the apostrophe before a formula-like start is ours."""
    if text.startswith("'") and text[1:].startswith(_FORMULA_START):
        return text[1:]
    return text
