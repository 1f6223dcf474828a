"""reports/class.html: how the class did, per section and exercise, and what went wrong where; late
work and unusually similar pairs (with reports/similarity.html for the shared fragments)."""
from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape

from d2lgrade.core import results as R
from d2lgrade.batch import late, plots, similarity
from d2lgrade.batch.exports import _section_key, exercise_order
from d2lgrade.batch.gradebook import ERROR, GRADED, INVALID, MISSING, Gradebook
from d2lgrade.core.sections import Section

_ENV = Environment(loader=PackageLoader("d2lgrade.report", "templates"),
                   autoescape=select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True)
_ENV.filters["num"] = lambda x: f"{x:g}"
FAILING = (R.FAILED, R.ERROR, R.TIMEOUT, R.MEMORY)
TOP_FAILURES = 5
SLOWEST = 10        # checks listed under "Slowest checks"


def write(book: Gradebook, out: Path) -> Path:
    path = Path(out) / "class.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_ENV.get_template("class.html.j2").render(**context(book)), encoding="utf-8")
    return path


def write_similarity(book: Gradebook, out: Path) -> Path:
    """similarity.html: each flagged pair's shared fragments, side by side."""
    path = Path(out) / "similarity.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    names = {s["id"]: s["name"] for s in book.roster()}
    pairs = [{**p, "anchor": pair_anchor(p), "names": [names.get(s, "") for s in p["students"]]} for p in book.similar()]
    path.write_text(_ENV.get_template("similarity.html.j2").render(
        pairs=pairs, threshold=similarity.THRESHOLD, min_tokens=similarity.MIN_TOKENS), encoding="utf-8")
    return path


def pair_anchor(pair: dict) -> str:
    return quote(f"{pair['section']}-{pair['students'][0]}-{pair['students'][1]}")


def context(book: Gradebook) -> dict:
    rows = book.submissions()
    results = book.results()
    section_ids = sorted({r.section for r in rows}, key=_section_key)
    by_student = defaultdict(dict)
    for r in rows:
        by_student[r.student][r.section] = r
    roster = {s["id"]: s for s in book.roster()}
    sections = [_section(sid, [r for r in rows if r.section == sid], [x for x in results if x["section"] == sid])
                for sid in section_ids]
    students = []
    for name, subs in sorted(by_student.items()):
        cells = []
        for sid in section_ids:
            row = subs.get(sid)
            graded = row is not None and row.status == GRADED
            score = (row.final_score if row.final_score is not None else row.score) if graded else 0
            cells.append({"status": row.status if row else MISSING, "score": score, "late": bool(graded and row.late_days),
                          "link": quote(f"{name}/{sid}.html") if graded else None})   # ids may hold spaces, #
        students.append({"name": name, "full_name": roster.get(name, {}).get("name", ""), "cells": cells,
                         "total": sum(c["score"] or 0 for c in cells)})
    counts = Counter(r.status for r in rows)
    late_work = [{"student": r.student, "name": roster.get(r.student, {}).get("name", ""), "section": r.section,
                  "submitted": late.show(datetime.fromisoformat(r.submitted_at)) if r.submitted_at else "",
                  "source": r.time_source or "", "late_days": r.late_days, "penalty": r.penalty or 0,
                  "score": r.score or 0, "final": r.final_score or 0}
                 for r in rows if r.status == GRADED and r.late_days]
    return {"sections": sections, "students": students, "gradebook": str(book.path),
            "counts": {"students": len(by_student), "graded": counts[GRADED], "missing": counts[MISSING],
                       "invalid": counts[INVALID], "error": counts[ERROR]},
            "problems": [{"student": r.student, "section": r.section, "status": r.status, "message": r.message}
                         for r in rows if r.status != GRADED],
            "late_work": late_work,
            "similar": [{**p, "anchor": pair_anchor(p)} for p in book.similar()],
            "similarity": {"threshold": similarity.THRESHOLD, "min_tokens": similarity.MIN_TOKENS},
            "not_on_roster": sorted(set(by_student) - set(roster)) if roster else [],
            "slowest": slowest_checks(results),
            "has_roster": bool(roster)}


def _section(section_id: str, rows: list, results: list[dict]) -> dict:
    graded = [r for r in rows if r.status == GRADED]
    top = max([r.max_score for r in graded if r.max_score] or [0])
    scores = [r.score or 0 for r in graded]
    written = written_checks(section_id)
    exercises = [_exercise(ex, [x for x in results if x["exercise"] == ex], written) for ex in exercise_order(section_id)]
    rated = [e for e in exercises if e["attempts"]]
    return {"id": section_id, "max": top, "graded": len(graded), "mean": round(sum(scores) / len(scores), 2) if scores else 0,
            "exercises": exercises,
            "histogram": plots.score_histogram(scores, top, f"{section_id}: scores") if scores else "",
            "pass_chart": plots.pass_rates([e["id"] for e in rated], [e["passed"] / e["attempts"] for e in rated],
                                           f"{section_id}: pass rate per exercise") if rated else ""}


def slowest_checks(results: list[dict], limit: int = SLOWEST) -> list[dict]:
    """The checks the class waited on longest, by mean wall time (rows graded before times were kept have none)."""
    times = defaultdict(list)
    for x in results:
        if x.get("seconds"):
            times[x["check_id"]].append(x["seconds"])
    rows = [{"check": check, "mean": sum(t) / len(t), "max": max(t), "count": len(t)} for check, t in times.items()]
    return sorted(rows, key=lambda r: (-r["mean"], r["check"]))[:limit]


@lru_cache(maxsize=None)
def written_checks(section_id: str) -> frozenset[str]:
    """Ids of the checks an instructor scores (as d2lgrade.pipeline.grading.manual_results names them)."""
    return frozenset(f"{ex.id}:written" if ex.kinds - {"free-text"} else ex.id
                     for ex in Section(section_id).spec.exercises if ex.manual_points)


def _exercise(exercise_id: str, results: list[dict], written: frozenset[str]) -> dict:
    """Pass rate over automatic checks (all of a student's checks of the exercise passed), and the
    failure messages grouped: numbers are masked so that "got 3" and "got 4" count as one mistake."""
    automatic = [x for x in results if x["check_id"] not in written]
    by_student = defaultdict(list)
    for x in automatic:
        by_student[x["student"]].append(x["status"])
    groups: dict[str, dict] = {}
    for x in automatic:
        if x["status"] not in FAILING:
            continue
        key = re.sub(r"-?\d+(\.\d+)?(e-?\d+)?", "#", x["message"])
        group = groups.setdefault(key, {"message": x["message"], "students": []})
        if x["student"] not in group["students"]:
            group["students"].append(x["student"])
    failures = sorted(({**g, "count": len(g["students"])} for g in groups.values()),
                      key=lambda g: (-g["count"], g["message"]))[:TOP_FAILURES]
    return {"id": exercise_id, "attempts": len(by_student),
            "passed": sum(all(s == R.PASSED for s in statuses) for statuses in by_student.values()),
            "failures": failures}
