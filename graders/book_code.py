"""Reading why a student's model could not be built, for the chapter-8 graders.

The runtime's traceback (d2lgrade/inside/agent.student_traceback) lists the student's own frames with their
source lines. When a book model fails to build, the useful message names the student's line and the fix;
the commonest case is a layer typed without its input size (`nn.Conv2d(out_channels, ...)`,
`nn.Linear(4096)`) where the book uses the lazy layers that infer it.
"""
from __future__ import annotations

import re

from d2lgrade.core.checks import StudentError
from graders.architecture import describe_student

FRAME = re.compile(r"^  (?P<where>.+), line (?P<line>\d+), in (?P<function>\S+)\n    (?P<code>.+)$", re.M)
MISSING_SIZE = re.compile(r"(?P<layer>Conv[123]d|Linear)\.__init__\(\) missing \d+ required positional "
                          r"arguments?: '(?P<argument>\w+)'")
FIXES = {
    "Conv2d": ("the number of input channels first: nn.Conv2d(in_channels, out_channels, kernel_size, ...)",
               "nn.LazyConv2d(out_channels, kernel_size=3, padding=1)"),
    "Linear": ("both sizes: nn.Linear(in_features, out_features)", "nn.LazyLinear(4096)"),
}


def student_line(detail: str) -> tuple[str, str] | None:
    """(source line, "in <function>, <cell> line N") of the last frame of the student's own code, or None."""
    frames = [m for m in FRAME.finditer(detail or "") if not m.group("where").startswith("<probe")]
    if not frames:
        return None
    last = frames[-1]
    return last.group("code").strip(), f"in {last.group('function')}, {last.group('where')} line {last.group('line')}"


def own_frames(detail: str) -> str:
    """The traceback cut to the frames that show a line of the student's code, and the error line: the
    grader's probe frames (which the runtime cannot tell from student code) say nothing to a student."""
    frames = [m.group(0) for m in FRAME.finditer(detail or "") if not m.group("where").startswith("<probe")]
    last = (detail or "").strip().splitlines()[-1:]
    return "\n".join(frames + last)


def explain_build_error(exc: StudentError, call: str) -> StudentError:
    """A StudentError whose message names the student's failing line and, for a layer typed without its
    input size, what is missing and the book's lazy layer that infers it."""
    found = student_line(own_frames(exc.detail))
    error = exc.message.split(" raised ", 1)[-1].rstrip(".")
    if found is None:
        return StudentError(f"`{call}` could not be built: {error}.", exc.detail)
    code, where = found
    missing = MISSING_SIZE.search(exc.message + "\n" + (exc.detail or ""))
    if missing:
        needs, lazy = FIXES.get(missing.group("layer"), FIXES["Conv2d"])
        kind = missing.group("layer")
        return StudentError(
            f"`{call}` could not be built: `{code}` ({where}) raised TypeError (missing "
            f"'{missing.group('argument')}'): nn.{kind} needs {needs}, so the one size given was read as the "
            f"input size; the book writes {lazy}, a lazy layer that infers the input size on the first "
            "forward pass.", own_frames(exc.detail))
    return StudentError(f"`{call}` could not be built: `{code}` ({where}) raised {error}.", own_frames(exc.detail))


def describe(p, call: str, name: str, *args, input_shape, **kwargs) -> dict:
    """`describe_student(p, name, *args, ...)`, with a construction error explained on the student's line;
    `call` is how the message writes the call (e.g. "VGG(arch=...)")."""
    try:
        return describe_student(p, name, *args, input_shape=input_shape, **kwargs)
    except StudentError as exc:
        raise explain_build_error(exc, call) from None
