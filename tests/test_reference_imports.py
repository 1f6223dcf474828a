"""While an engine waits for its runtime, the grader imports the libraries the references need
(d2lgrade.expected.meanwhile): only libraries, never a reference's own code, on a thread that has ended when
the wait ends, and a library that fails there is not the wait's problem."""
from __future__ import annotations

import sys
import threading

import pytest

from d2lgrade import course, expected

LIBRARY = "d2lgrade_test_library_{}"


@pytest.fixture
def course_folder(monkeypatch, tmp_path):
    """A course whose reference 9.9 imports two libraries (one broken) and must never run here."""
    monkeypatch.setattr(course, "ROOT", tmp_path)
    monkeypatch.setattr(expected, "_named", {})
    monkeypatch.syspath_prepend(str(tmp_path / "lib"))
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / f"{LIBRARY.format('ok')}.py").write_text(
        "import threading\nIMPORTED_ON = threading.current_thread().name\n")
    (tmp_path / "lib" / f"{LIBRARY.format('broken')}.py").write_text("raise ImportError('broken on purpose')\n")
    (tmp_path / "reference").mkdir()
    (tmp_path / "reference" / "section_9_9.py").write_text(
        f"import {LIBRARY.format('ok')}\nfrom {LIBRARY.format('broken')} import anything\n"
        "from reference import section_9_8\nraise RuntimeError('a reference ran in the grader')\n")
    yield
    for name in ("ok", "broken"):
        sys.modules.pop(LIBRARY.format(name), None)


def test_the_named_references_libraries_are_imported_meanwhile_and_the_thread_is_joined(course_folder):
    expected.reference("9.9")
    with expected.meanwhile():
        pass
    library = sys.modules[LIBRARY.format("ok")]
    assert library.IMPORTED_ON == "d2lgrade-imports"
    assert "d2lgrade-imports" not in [t.name for t in threading.enumerate()]
    assert LIBRARY.format("broken") not in sys.modules and "reference.section_9_9" not in sys.modules
    with pytest.raises(ImportError, match="broken on purpose"):      # its real error, where it is used
        __import__(LIBRARY.format("broken"))


def test_nothing_is_imported_in_a_kit_or_for_an_unnamed_section(course_folder, monkeypatch):
    with expected.meanwhile():
        pass
    assert LIBRARY.format("ok") not in sys.modules
    expected.reference("9.9")
    monkeypatch.setattr(expected, "mode", lambda: "replay")
    with expected.meanwhile():
        pass
    assert LIBRARY.format("ok") not in sys.modules
