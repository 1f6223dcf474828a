"""What grading produces: one record per check, and the report that holds them."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

# The statuses are the public JSON contract: keep them in sync with the README.
PASSED = "passed"
FAILED = "failed"
ERROR = "error"          # the student's code raised, or the submission could not run
TIMEOUT = "timeout"
MEMORY = "memory"        # the runtime hit its memory limit
NOT_ATTEMPTED = "not_attempted"
MANUAL = "manual"        # free text waiting for an instructor
STATUSES = (PASSED, FAILED, ERROR, TIMEOUT, MEMORY, NOT_ATTEMPTED, MANUAL)


@dataclass
class CheckResult:
    id: str                 # unique check id, e.g. "7.3/1" or "7.3/1:example"
    exercise: str           # the exercise it scores, e.g. "7.3/1"
    title: str
    points: float
    max_points: float
    status: str
    message: str            # one line for the terminal table
    detail: str = ""        # longer text for the HTML report (diffs, trimmed traceback)
    answer: str = ""        # the student's answer when it is text (symbolic, free text)
    expected: str = ""      # what the grader expected, in words (never hidden inputs)
    hidden: bool = False
    reveal: str = ""        # the answer, for feedback level full only (d2lgrade/core/feedback.py empties it)
    expected_reveals: bool = False
    rubric: list[str] = field(default_factory=list)
    seconds: float = 0.0    # the check's own wall time (the runtime's start and the cells are the report's)

    def public(self) -> dict:
        return {"id": self.id, "exercise": self.exercise, "points": self.points,
                "max_points": self.max_points, "status": self.status, "message": self.message,
                "seconds": self.seconds}


@dataclass
class GradeReport:
    section: str
    submission: str
    checks: list[CheckResult]
    notes: list[str] = field(default_factory=list)      # shell escapes skipped, cells that failed...
    device: str = "cpu"
    executor: str = "kernel"
    seconds: float = 0.0
    limits: dict = field(default_factory=dict)
    feedback: str = "hints"    # the level its texts were cut to (d2lgrade/core/feedback.py)

    @property
    def score(self) -> float:
        return round(sum(c.points for c in self.checks), 4)

    @property
    def max_score(self) -> float:
        """Points available from automatic checks plus manual ones (manual count as 0 until reviewed)."""
        return round(sum(c.max_points for c in self.checks), 4)

    def to_json(self) -> dict:
        return {"section": self.section, "submission": self.submission, "score": self.score,
                "max_score": self.max_score, "checks": [c.public() for c in self.checks],
                "notes": self.notes, "device": self.device, "feedback": self.feedback}

    def to_dict(self) -> dict:
        d = asdict(self)
        d["score"], d["max_score"] = self.score, self.max_score
        return d
