"""Remove what must never run while grading: shell escapes and package installs."""
from __future__ import annotations

import re

# Line-level shell escapes and install magics. Matched after indentation so that
# `    !pip install x` inside a block is caught too.
SHELL_LINE = re.compile(
    r"^(?P<indent>\s*)(?:!|%(?:pip|conda|mamba|system|sx|sc)\b|%%|get_ipython\(\)\.(?:system|getoutput)\b"
    r"|get_ipython\(\)\.run_line_magic\(\s*['\"](?:pip|conda|system|sx)['\"])")
# Cell magics that hand the whole cell to another interpreter.
SHELL_CELL = re.compile(r"^\s*%%(?:bash|sh|script|system|!|perl|ruby|js|javascript|html|writefile|file)\b")
SAFE_CELL_MAGICS = re.compile(r"^\s*%%(?:time|timeit|capture)\b")


def strip_shell(source: str) -> tuple[str, list[str]]:
    """Return the cell with shell lines replaced by `pass`, and the lines removed."""
    if SHELL_CELL.match(source):
        return "pass  # d2l-grade: cell magic not run while grading", [source.strip().splitlines()[0]]
    removed, out = [], []
    lines = source.splitlines()
    for i, line in enumerate(lines):
        if i == 0 and SAFE_CELL_MAGICS.match(line):
            out.append(line)
            continue
        match = SHELL_LINE.match(line)
        if match:
            removed.append(line.strip())
            out.append(f"{match.group('indent')}pass  # d2l-grade: shell command not run")
        else:
            out.append(line)
    return "\n".join(out), removed
