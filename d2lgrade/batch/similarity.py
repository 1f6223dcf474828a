"""Pairs of submissions that are unusually similar, per section (MOSS's method, small and our own).

Each submission's code cells become a stream of normalised tokens (Python's tokenize: every name the
student chose is `N` and every literal `L`; keywords, operators, builtins and attribute names such as
`nn.Conv2d` kept; comments and blank lines dropped), so renaming variables or rewording comments
changes nothing. Fingerprints are hashes of every K-token run,
winnowed (Schleimer, Wilkerson and Aiken, SIGMOD 2003: the smallest hash of every window of W runs),
which guarantees that any shared run of K + W - 1 tokens is found.

What everyone is expected to share is taken out first: the starter notebook's cells, the book's code
(the reference's cells that belong to no exercise), the reference's own answers, and fingerprints found
in many submissions of the section (an answer the whole class converges on). Submissions with the same
code token for token are flagged whenever they share MIN_TOKENS beyond the starter and the book. A pair is flagged when
both hold at least MIN_TOKENS tokens in common beyond that and the shared part is at least THRESHOLD of
the smaller submission's remaining fingerprints: independent right answers to short exercises share a
line here and there, far below either bar; a copied notebook shares nearly everything.
"""
from __future__ import annotations

import builtins
import io
import keyword
import tokenize
import zlib
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import combinations

from d2lgrade.batch.discover import FOUND
from d2lgrade.core.errors import SubmissionError
from d2lgrade.load import load_submission
from d2lgrade.core.sections import Section

K = 12                 # tokens per fingerprinted run: about one line of code
W = 8                  # winnowing window: any shared run of K + W - 1 = 19 tokens is certainly seen
THRESHOLD = 0.7        # share of the smaller submission's own fingerprints that the pair has in common
MIN_TOKENS = 80        # and at least this many tokens in common (about six lines of code)
COMMON = 0.5           # a fingerprint in more than this share of a section's submissions is no evidence
COMMON_AT_LEAST = 4    # ... and in more than this many (a small class: three copies stay evidence)
SETTINGS = {"k": K, "w": W, "threshold": THRESHOLD, "min_tokens": MIN_TOKENS, "common": [COMMON, COMMON_AT_LEAST]}
BUILTINS = frozenset(dir(builtins))
SKIP = {tokenize.COMMENT, tokenize.NL, tokenize.ENCODING, tokenize.ENDMARKER, tokenize.INDENT, tokenize.DEDENT}


@dataclass
class Code:
    """One submission's code, tokenised: each token's normal form and where it came from."""
    cells: list[str]
    tokens: list[str] = field(default_factory=list)
    where: list[tuple[int, int]] = field(default_factory=list)      # (cell index, line in the cell)


def tokens(code: Code) -> Code:
    for index, source in enumerate(code.cells):
        for kind, text, line in _tokenize(source):
            code.tokens.append(text)
            code.where.append((index, line))
    return code


def _tokenize(source: str):
    previous = ""
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type in SKIP:
                continue
            if tok.type == tokenize.NAME:
                # The student's own names are abstracted; the library's (an attribute, a builtin) are
                # kept: renaming them would change what the code does, and `nn.Conv2d` is not `nn.ReLU`.
                kept = keyword.iskeyword(tok.string) or previous == "." or tok.string in BUILTINS
                text = tok.string if kept else "N"
            elif tok.type in (tokenize.NUMBER, tokenize.STRING) or "FSTRING" in tokenize.tok_name.get(tok.type, ""):
                text = "L"
            elif tok.type == tokenize.NEWLINE:
                text = ";"
            else:
                text = tok.string
            previous = tok.string
            yield tok.type, text, tok.start[0]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return                          # keep what was read: a cell that does not parse still counts so far


def fingerprints(code: Code) -> dict[int, int]:
    """Winnowed fingerprints: hash -> the position of its first K-token run."""
    runs = [zlib.crc32(" ".join(code.tokens[i:i + K]).encode()) for i in range(len(code.tokens) - K + 1)]
    chosen: dict[int, int] = {}
    for start in range(max(1, len(runs) - W + 1)):
        window = runs[start:start + W]
        if not window:
            break
        low = min(window)
        pos = start + max(i for i, h in enumerate(window) if h == low)     # the rightmost smallest
        chosen.setdefault(low, pos)
    return chosen


@lru_cache(maxsize=None)
def expected_fingerprints(section_id: str, answers: bool = True) -> frozenset[int]:
    """What every submission may hold: the starter's cells and the book's code (the reference's cells
    outside any exercise), and with `answers` the reference's answers too."""
    section, cells = Section(section_id), []
    for path, keep in ((section.starter_path, lambda c: True),
                       (section.reference_path, lambda c: answers or c.exercise is None)):
        try:
            cells += [c.source for c in load_submission(path).code_cells if keep(c)]
        except (SubmissionError, OSError):
            continue
    return frozenset(_all_runs(tokens(Code(cells))))


def _all_runs(code: Code) -> set[int]:
    return {zlib.crc32(" ".join(code.tokens[i:i + K]).encode()) for i in range(len(code.tokens) - K + 1)}


def sources(work: list) -> dict[str, dict[str, list[str]]]:
    """section -> student -> code cells, for every readable submission found."""
    out: dict[str, dict[str, list[str]]] = {}
    for w in work:
        if w.state != FOUND:
            continue
        try:
            cells = [c.source for c in load_submission(w.path).code_cells]
        except (SubmissionError, OSError, ValueError):
            continue
        out.setdefault(w.section, {})[w.student] = cells
    return out


def find_pairs(by_section: dict[str, dict[str, list[str]]]) -> list[dict]:
    pairs = []
    for section, students in sorted(by_section.items()):
        codes = {s: tokens(Code(cells)) for s, cells in students.items()}
        prints = {s: fingerprints(c) for s, c in codes.items()}
        expected = expected_fingerprints(section)
        seen_in: dict[int, int] = {}
        for fp in prints.values():
            for h in fp:
                seen_in[h] = seen_in.get(h, 0) + 1
        limit = max(COMMON_AT_LEAST, COMMON * len(prints))
        own = {s: {h: p for h, p in fp.items() if h not in expected and seen_in[h] <= limit} for s, fp in prints.items()}
        base = expected_fingerprints(section, answers=False)
        for a, b in combinations(sorted(own), 2):
            pair = compare(codes[a], own[a], codes[b], own[b]) or same_code(codes[a], prints[a], codes[b], prints[b], base)
            if pair is not None:
                pairs.append({"section": section, "students": [a, b], **pair})
    return pairs


def same_code(code_a: Code, fp_a: dict[int, int], code_b: Code, fp_b: dict[int, int], base: frozenset[int]) -> dict | None:
    """The same code token for token (a copied notebook, renamed or not), beyond the starter and the
    book: flagged even where it is the reference's answer, which no two students write independently
    at this length."""
    if code_a.tokens != code_b.tokens:
        return None
    beyond = {h: p for h, p in fp_a.items() if h not in base}
    if len({i for p in beyond.values() for i in range(p, p + K)}) < MIN_TOKENS:
        return None                       # e.g. two untouched starters
    return {"similarity": 1.0, "fragments": fragments(code_a, code_b, sorted((p, fp_b[h]) for h, p in beyond.items()))}


def compare(code_a: Code, fp_a: dict[int, int], code_b: Code, fp_b: dict[int, int]) -> dict | None:
    shared = fp_a.keys() & fp_b.keys()
    if not shared or not fp_a or not fp_b:
        return None
    score = len(shared) / min(len(fp_a), len(fp_b))
    if score < THRESHOLD:
        return None
    covered_a = {i for h in shared for i in range(fp_a[h], fp_a[h] + K)}
    covered_b = {i for h in shared for i in range(fp_b[h], fp_b[h] + K)}
    if min(len(covered_a), len(covered_b)) < MIN_TOKENS:
        return None
    matches = sorted((fp_a[h], fp_b[h]) for h in shared)
    return {"similarity": round(score, 3), "fragments": fragments(code_a, code_b, matches)}


def fragments(code_a: Code, code_b: Code, matches: list[tuple[int, int]], most: int = 6) -> list[dict]:
    """Shared runs merged into stretches of code, each as the lines of both submissions."""
    runs: list[list[int]] = []           # [a start, a end, b start, b end] in tokens
    for a, b in matches:
        last = runs[-1] if runs else None
        if last and last[0] <= a <= last[1] + W + K and last[2] <= b <= last[3] + W + K:
            last[1], last[3] = max(last[1], a + K), max(last[3], b + K)
        else:
            runs.append([a, a + K, b, b + K])
    runs.sort(key=lambda r: r[0] - r[1])
    return [{"a": _lines(code_a, r[0], r[1]), "b": _lines(code_b, r[2], r[3])} for r in runs[:most]]


def _lines(code: Code, start: int, end: int) -> dict:
    """The lines a stretch of tokens covers, in the cell that holds most of it (a run may cross a cell
    boundary by a few tokens)."""
    where = code.where[start:min(end, len(code.where))]
    cell = Counter(c for c, _ in where).most_common(1)[0][0]
    numbers = [line for c, line in where if c == cell]
    first, last = min(numbers), max(numbers)
    lines = code.cells[cell].splitlines()[first - 1:last]
    return {"where": f"code cell {cell + 1}, lines {first}–{last}", "code": "\n".join(lines)}
