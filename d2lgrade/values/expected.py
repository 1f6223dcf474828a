"""The one seam through which a grader gets its expected values.

A grader writes `ref = reference("7.3")` and then `ref.mirror_pad(X, p)`, `ref.example_shape`,
`ref.formula("output_shape", 0)` or `computed(ref, "label", fn, *args)` for what needs the reference's
code (describing its network, training it). What that does depends on the folder (d2lgrade/core/course.py):

- live (the course folder): it runs the reference in reference/section_<x>.py;
- record (`grade.py --release`): the same, and every value handed to a check is also written down as safe
  data (d2lgrade/core/recording.py), keyed by the call's arguments; formulas are written down as their values
  at the sample points the comparison uses, never as text;
- replay (a student kit): nothing is run, the recording answers. An input the release never met is a
  `NotRecorded` verdict: no points in the kit, and the instructor's grading decides.
"""
from __future__ import annotations

import contextlib
import contextvars
import importlib
from functools import lru_cache
from types import ModuleType

from d2lgrade.core import course, recording, results
from d2lgrade.values import expected_cache
from d2lgrade.core.checks import Verdict

RECORDINGS = course.ROOT / "recorded"


class NotRecorded(BaseException):
    """The kit holds no expected value for this input: the student's answer took a path the release did not
    record. Not the student's fault, and no verdict: the instructor's grading scores it. A BaseException, so
    that a grader's `except Exception` around a student's call cannot turn it into the student's error."""
    status = results.MANUAL

    def __init__(self, what: str):
        self.message = (f"the student kit cannot check this ({what} was not recorded when the kit was built); "
                        "the instructor's grading will score it")
        self.detail = ""
        super().__init__(self.message)


class LeftOut(Verdict):
    """A check the release could not record (it needs the reference's code while grading)."""
    status = results.MANUAL


# --------------------------------------------------------------------------------------------
# Recording (used by d2lgrade/release)
# --------------------------------------------------------------------------------------------

class Recorder:
    """What a release writes down while it grades its corpus: per section, values, calls and formulas."""

    def __init__(self):
        self.sections: dict[str, dict] = {}
        self.left_out: dict[str, dict[str, str]] = {}     # section -> check id -> why it cannot be replayed

    def book(self, section: str) -> dict:
        return self.sections.setdefault(section, {"values": {}, "calls": {}, "formulas": {}})

    def cannot_replay(self, section: str, why: str) -> None:
        check = _current_check.get()
        if check is not None:
            self.left_out.setdefault(section, {}).setdefault(check, why)

    def payload(self, section: str) -> dict:
        return {"section": section, **self.book(section), "left_out": self.left_out.get(section, {})}


_recorder: Recorder | None = None
_current_check: contextvars.ContextVar[str | None] = contextvars.ContextVar("d2lgrade_check", default=None)


@contextlib.contextmanager
def record_into(recorder: Recorder):
    global _recorder
    previous, _recorder = _recorder, recorder
    try:
        yield recorder
    finally:
        _recorder = previous


@contextlib.contextmanager
def checking(check_id: str):
    """Tell the recorder which check is asking (grading.run_check wraps every check in this)."""
    token = _current_check.set(check_id)
    try:
        yield
    finally:
        _current_check.reset(token)


def mode() -> str:
    if course.is_kit():
        return "replay"
    return "record" if _recorder is not None else "live"


@lru_cache(maxsize=None)
def _replayed(section: str) -> dict:
    path = RECORDINGS / f"{section}.json.gz"
    try:
        return recording.read(path)
    except FileNotFoundError:
        return {"values": {}, "calls": {}, "formulas": {}, "left_out": {}}


def guard(check) -> None:
    """In a kit, a check the release left out ends here, with the reason: the instructor's grading scores it."""
    why = left_out(check.exercise.partition("/")[0]).get(check.id)
    if why:
        raise LeftOut(f"scored by the instructor's grading only: the student kit cannot check this ({why})")


def left_out(section: str) -> dict[str, str]:
    """In a kit: the checks of `section` the release could not record, with the reason."""
    return _replayed(section).get("left_out", {}) if mode() == "replay" else {}


# --------------------------------------------------------------------------------------------
# The seam
# --------------------------------------------------------------------------------------------

class Reference:
    """A section's reference solution as graders see it (see the module's docstring)."""

    def __init__(self, section: str):
        self._section = section

    @property
    def section(self) -> str:
        return self._section

    @property
    def module(self) -> ModuleType:
        """The reference module itself: only for `computed` functions, which never run in a kit."""
        if mode() == "replay":
            raise RuntimeError(f"the student kit has no reference for {self._section}; use computed(...)")
        return importlib.import_module(f"reference.section_{self._section.replace('.', '_')}")

    def shown(self, name: str) -> str:
        """A reference constant as an `expected=` text, which is built when the grader is imported: a kit that
        never recorded the constant says so instead of failing to import."""
        try:
            return repr(getattr(self, name))
        except NotRecorded:
            return "as in the reference"

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        if mode() == "replay":
            book = _replayed(self._section)
            if name in book["values"]:
                return recording.decode(book["values"][name])
            if name in book["calls"]:
                return _ReplayedCall(self, name)
            raise NotRecorded(f"`{name}` of the reference")
        if _recorder is None:
            return self._live(name)
        value = getattr(self.module, name)
        if callable(value):
            return _LiveCall(self, name)
        _keep(self._section, lambda book, data: book["values"].__setitem__(name, data), value)
        return value

    def _live(self, name: str):
        """A constant (or a function's name) of the reference in the course folder. Importing a reference imports
        d2l, one to two seconds before a check can go on, so what a constant is stays on disk beside the expected
        values, keyed by the reference's code (d2lgrade/values/expected_cache.py): a grading whose expected values
        are all kept never imports it."""
        key = expected_cache.constant_key(self._section, name)
        found, kept = expected_cache.fetch(key) if key else (False, None)
        if found and isinstance(kept, dict) and kept.get("kind") in ("value", "function"):
            return kept["value"] if kept["kind"] == "value" else _LiveCall(self, name)
        value = getattr(self.module, name)
        if callable(value):
            if key:
                expected_cache.keep(key, {"kind": "function"})
            return _LiveCall(self, name)
        if key:
            expected_cache.keep(key, {"kind": "value", "value": value})
        return value

    def formula(self, name: str, index: int | None = None):
        """The reference's formula `name` (or its `index`-th part). In a kit, a RecordedFormula that knows the
        formula's values at the comparison's sample points but not its text."""
        key = name if index is None else f"{name}[{index}]"
        if mode() == "replay":
            return RecordedFormula(self._section, key, _replayed(self._section)["formulas"].get(key))
        text = self._live(name) if _recorder is None else getattr(self.module, name)
        text = text if index is None else text[index]
        if not isinstance(text, str):
            raise TypeError(f"reference {self._section}: `{key}` is not a formula string")
        return RecordingFormula(text, self._section, key) if _recorder is not None else text


def reference(section: str) -> Reference:
    """The wrapper through which graders read `section`'s reference solution (reference/section_<x>.py): its
    constants, calls and formulas, run live in the course folder and replayed from the recording in a kit."""
    return Reference(section)


def computed(ref: Reference, label: str, fn, *args, **kwargs):
    """`fn(ref.module, *args, **kwargs)`: run in the course folder, recorded at release, replayed in a kit.
    `label` names what is computed; the arguments must be safe data (they name the recording)."""
    return _computed(ref, label, fn, fn, args, kwargs)


def _computed(ref: Reference, label: str, fn, named_by, args: tuple, kwargs: dict):
    """`computed`, where `named_by` is the plain function that names `fn` in the live cache (fn itself, or
    `_reference_function` for a call of the reference's own function `label`)."""
    if mode() == "replay":
        return _ReplayedCall(ref, label)(*args, **kwargs)
    if _recorder is None:                  # live: once per course and grader version (d2lgrade/values/expected_cache.py)
        named = expected_cache.key(ref.section, _current_check.get(), label, named_by, args, kwargs,
                                   course.held_out_key())
        if named is not None:
            found, value = expected_cache.fetch(named[0])
            if found:
                return value
        value = fn(ref.module, *args, **kwargs)
        if named is not None:
            expected_cache.keep(named[0], value, named[1], args, kwargs)
        return value
    value = fn(ref.module, *args, **kwargs)
    if _recorder is not None:
        try:
            key = recording.digest(args, kwargs)
        except recording.NotSafeData as exc:
            _recorder.cannot_replay(ref.section, f"{label} is called with {exc}")
            return value
        _keep(ref.section, lambda book, data: book["calls"].setdefault(label, {}).__setitem__(key, data), value,
              what=label)
    return value


def _keep(section: str, store, value, what: str = "") -> None:
    try:
        data = recording.encode(value)
    except recording.NotSafeData as exc:
        _recorder.cannot_replay(section, f"{what or 'a value of the reference'} is {exc}, which a kit cannot hold")
        return
    store(_recorder.book(section), data)


class _LiveCall:
    def __init__(self, ref: Reference, name: str):
        self.ref, self.name = ref, name

    def __call__(self, *args, **kwargs):
        return _computed(self.ref, self.name, lambda module, *a, **k: getattr(module, self.name)(*a, **k),
                         _reference_function, args, kwargs)


def _reference_function(module, *args, **kwargs):
    """Names a call of the reference's own function in the live cache; the label says which function."""
    raise NotImplementedError


class _ReplayedCall:
    def __init__(self, ref: Reference, label: str):
        self.ref, self.label = ref, label

    def __call__(self, *args, **kwargs):
        calls = _replayed(self.ref.section)["calls"].get(self.label, {})
        try:
            key = recording.digest(args, kwargs)
        except recording.NotSafeData:
            key = None
        if key not in calls:
            raise NotRecorded(f"the reference's `{self.label}` for this input")
        return recording.decode(calls[key])


# --------------------------------------------------------------------------------------------
# Formulas (compared in d2lgrade/compare/equality.py)
# --------------------------------------------------------------------------------------------

class RecordingFormula(str):
    """A reference formula's text, tagged with its name, while a release records: the comparison writes down
    its values at every point it evaluates."""

    def __new__(cls, text: str, section: str, key: str):
        self = super().__new__(cls, text)
        self.section, self.key = section, key
        return self

    def record(self, names: list[str], points: dict) -> None:
        """Add the formula's `names` and {point: encoded value} to the recording."""
        book = _recorder.book(self.section)["formulas"].setdefault(self.key, {"names": names, "points": {}})
        book["points"].update(points)


class RecordedFormula:
    """A formula a kit knows only by its values: `names` (its symbols) and the values at recorded points."""

    def __init__(self, section: str, key: str, data: dict | None):
        self.section, self.key = section, key
        self.recorded = data is not None      # False: the release never compared against it
        self.names: list[str] = list(data["names"]) if data else []
        self.points: dict[str, object] = data["points"] if data else {}

    def __str__(self) -> str:
        return "the reference's formula (not in the student kit)"

    __format__ = lambda self, spec: str(self)   # noqa: E731  f-strings in `expected=` texts
