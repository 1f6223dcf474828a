"""What a report shows of each check: the feedback level.

A check's failure carries two texts: the hint (what is wrong and where to look) and `reveal` (the same
with the answer: the expected value, table, count or formula). A check's `expected=` text may state the
answer too (`reveals=True`). The level decides what reaches the JSON, the HTML and the terminal:

- verdict: points and status only;
- hints:   the hint, never the revealing texts (the default: grade.py, the kit, the in-notebook check);
- full:    everything, the revealing texts included (an instructor's `--feedback full`, and students'
           pages after the deadline where course.toml says so).

Hidden checks show their verdict only at every level.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from d2lgrade.core import results as R
from d2lgrade.core.errors import UserError

VERDICT, HINTS, FULL = "verdict", "hints", "full"
LEVELS = (VERDICT, HINTS, FULL)
# A class's batch keeps both texts in the gradebook (the instructor's) and cuts each student's page to the
# level the course gives it when the page is written: a deadline passing changes pages, not grades.
RECORD = "record"
DEFAULT = HINTS
KEYS = {"level", "after_deadline", "checks"}


@dataclass(frozen=True)
class Feedback:
    level: str = DEFAULT
    checks: dict[str, str] = field(default_factory=dict)   # check id or exercise (prefix) -> level

    def level_of(self, result: R.CheckResult) -> str:
        """The override that names the check most precisely wins: "8.6/2:table" over "8.6/2" over "8.6"."""
        best, length = self.level, -1
        for key, level in self.checks.items():
            if _names(key, result) and len(key) > length:
                best, length = level, len(key)
        return best

    def to_dict(self) -> dict:
        return {"level": self.level, "checks": dict(self.checks)}


def _names(key: str, result: R.CheckResult) -> bool:
    if key == result.id:
        return True
    exercise = result.exercise
    return exercise == key or exercise.startswith(key + ".") or exercise.startswith(key + "/")


def settings(value: "Feedback | str | dict | None") -> Feedback:
    """A Feedback from a level's name, a {"level", "checks"} dict (a batch's task) or None (the default)."""
    if value is None:
        return Feedback()
    if isinstance(value, Feedback):
        return value
    if isinstance(value, str):
        return Feedback(value if value == RECORD else check_level(value, "the feedback level"))
    return Feedback(check_level(value.get("level", DEFAULT), "the feedback level"),
                    {str(k): check_level(v, f"the feedback level of {k}") for k, v in (value.get("checks") or {}).items()})


def check_level(level, what: str) -> str:
    if level not in LEVELS:
        raise UserError(f"{what} is {level!r}; use one of {', '.join(repr(x) for x in LEVELS)}.")
    return level


def read_table(path, table: dict, sections: set[str] | None = None) -> dict:
    """course.toml's [feedback]: level, after_deadline and [feedback.checks] ({check or exercise: level});
    `sections`, the course's, catch an override that would silently apply to nothing."""
    if not isinstance(table, dict):
        raise UserError(f"{path}: feedback must be a table, [feedback]; compare it with the example in the README.")
    for key in table:
        if key not in KEYS:
            raise UserError(f"{path}: unknown key {key} in [feedback]; use {', '.join(sorted(KEYS))}.")
    checks = table.get("checks", {})
    if not isinstance(checks, dict):
        raise UserError(f"{path}: [feedback] checks must be a table, [feedback.checks], of \"8.6/2\" = \"verdict\" lines.")
    for key in checks:
        if sections is not None and str(key).partition("/")[0] not in sections:
            raise UserError(f"{path}: [feedback.checks] {key!r} names no section of this course; write a section, "
                            "exercise or check id like \"8.6\", \"8.6/2\" or \"8.6/2:table\".")
    out = {"level": check_level(table.get("level", DEFAULT), f"{path}: [feedback] level"),
           "checks": {str(k): check_level(v, f"{path}: [feedback.checks] {k}") for k, v in checks.items()}}
    if "after_deadline" in table:
        out["after_deadline"] = check_level(table["after_deadline"], f"{path}: [feedback] after_deadline")
    return out


def for_submission(table: dict | None, past_deadline: bool) -> dict:
    """The level a student's page gets: the course's, or after_deadline's once the deadline has passed
    (per-check overrides still apply, so a check kept at `verdict` stays so)."""
    table = table or {}
    level = table.get("after_deadline") if past_deadline and table.get("after_deadline") else table.get("level", DEFAULT)
    return {"level": level, "checks": dict(table.get("checks", {}))}


def for_page(report: R.GradeReport, settings_: dict | None) -> R.GradeReport:
    """A stored (RECORD) report cut to a student's page level, in place."""
    shown = settings(settings_)
    report.checks = [apply(c, shown.level_of(c)) for c in report.checks]
    report.feedback = shown.level
    return report


def apply(result: R.CheckResult, level: str) -> R.CheckResult:
    """`result` as `level` shows it (in place). The revealing texts are dropped from the record itself, not
    only from its rendering, so no output (JSON, gradebook, HTML, terminal) can show them by mistake."""
    if level == RECORD:
        return result
    reveal, result.reveal = result.reveal, ""
    expected_reveals, result.expected_reveals = result.expected_reveals, False
    if result.hidden:
        return result                          # grading already reduced it to its verdict
    if level == FULL:
        if reveal:
            result.message = f"{result.message} {reveal}".strip()
        return result
    if expected_reveals:
        result.expected = ""
    if level == VERDICT:
        result.message, result.detail, result.expected = LABELS.get(result.status, result.status), "", ""
        result.rubric = []           # a written answer's rubric lists what a right answer says
    return result


LABELS = {R.PASSED: "passed", R.FAILED: "failed", R.ERROR: "your code raised an error", R.TIMEOUT: "timed out",
          R.MEMORY: "ran out of memory", R.NOT_ATTEMPTED: "not attempted", R.MANUAL: "waits for an instructor"}
