"""The audit's report: a terminal table, the --json document, and docs/AUDIT.md."""
from __future__ import annotations

import datetime
from pathlib import Path

from d2lgrade.audit.run import SectionAudit
from d2lgrade.report.neutral import terminal_text


def kill_rate(killed: int, mutants: int, equivalent: int, accepted: int = 0) -> str:
    """Killed among the mutants that are wrong answers: neither equivalent nor another correct answer."""
    holes_and_kills = mutants - equivalent - accepted
    return f"{100 * killed / holes_and_kills:.1f} %" if holes_and_kills else "n/a"


def _rate(a: SectionAudit) -> str:
    return kill_rate(a.count("killed"), a.count(), a.count("equivalent"), a.count("accepted"))


def to_json(audits: list[SectionAudit]) -> dict:
    sections = {}
    for a in audits:
        sections[a.section] = {
            "mutants": a.count(), "killed": a.count("killed"), "equivalent": a.count("equivalent"),
            "accepted": a.count("accepted"), "seconds": a.seconds,
            "exercises": {e.exercise: {"mutants": len(e.outcomes), "killed": sum(o.verdict == "killed" for o in e.outcomes),
                                       "equivalent": sum(o.verdict == "equivalent" for o in e.outcomes),
                                       "accepted": sum(o.verdict == "accepted" for o in e.outcomes),
                                       "killed_by": _killers(e), **({"skipped": e.skipped} if e.skipped else {})}
                          for e in a.exercises},
            "survivors": [{"exercise": o.exercise, "operator": o.operator, "diff": o.diff}
                          for e in a.exercises for o in e.outcomes if o.verdict == "survived"],
            "equivalents": [{"exercise": o.exercise, "operator": o.operator, "diff": o.diff}
                            for e in a.exercises for o in e.outcomes if o.verdict == "equivalent"],
            "other_answers": [{"exercise": o.exercise, "operator": o.operator, "diff": o.diff, "because": o.accepted}
                              for e in a.exercises for o in e.outcomes if o.verdict == "accepted"],
        }
    return {"sections": sections}


def _killers(exercise) -> dict[str, int]:
    """How many mutants each check killed (the first check of the exercise that did not give full marks)."""
    out: dict[str, int] = {}
    for o in exercise.outcomes:
        if o.verdict == "killed":
            check = o.killed_by.split(" ", 1)[0]
            out[check] = out.get(check, 0) + 1
    return out


def rows(audits: list[SectionAudit]) -> list[tuple]:
    out = []
    for a in audits:
        for e in a.exercises:
            n = len(e.outcomes)
            k = sum(o.verdict == "killed" for o in e.outcomes)
            q = sum(o.verdict == "equivalent" for o in e.outcomes)
            c = sum(o.verdict == "accepted" for o in e.outcomes)
            out.append((e.exercise, n, k, q, c, n - k - q - c, kill_rate(k, n, q, c) if not e.skipped else "skipped"))
    return out


def terminal(audits: list[SectionAudit]) -> str:
    lines = [f"{'exercise':<10} {'mutants':>7} {'killed':>6} {'equiv':>5} {'other':>5} {'holes':>5} {'kill rate':>9}"]
    for exercise, n, k, q, c, s, rate in rows(audits):
        lines.append(f"{exercise:<10} {n:>7} {k:>6} {q:>5} {c:>5} {s:>5} {rate:>9}")
    for a in audits:
        lines.append(f"{a.section}: {a.count()} mutants, {a.count('killed')} killed, {a.count('equivalent')} equivalent, "
                     f"{a.count('accepted')} another correct answer, {a.count('survived')} holes, kill rate {_rate(a)}"
                     f" ({a.seconds:g} s)")
        for e in a.exercises:
            if e.skipped:
                lines.append(f"  {e.exercise} not audited: {e.skipped}")
            for o in e.outcomes:
                if o.verdict == "survived":
                    lines.append(f"  hole {o.exercise} [{o.operator}]\n" + _indent(o.diff, "    "))
    return "\n".join(terminal_text(line) for line in "\n".join(lines).splitlines())


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def markdown(audits: list[SectionAudit], *, command: str, not_audited: dict[str, str]) -> str:
    total = sum(a.count() for a in audits)
    killed = sum(a.count("killed") for a in audits)
    equivalent = sum(a.count("equivalent") for a in audits)
    accepted = sum(a.count("accepted") for a in audits)
    out = ["# Mutation audit of the graders", "",
           f"Last written by `{command}` on {datetime.date.today().isoformat()}; each section's figures are from "
           "its latest audit (kept in AUDIT.json beside this file).",
           "", "Mutants of each reference answer (see `d2lgrade/audit/operators.py` for the operators) are graded by "
           "the exercise's own checks. *Killed*: a check gave less than full marks. *Equivalent*: the mutant "
           "answered every request the checks made, and the same calls on redrawn random inputs, exactly like "
           "the reference. *Another correct answer*: a survivor of an open exercise that the audit re-measured with its "
           "own probe and found to have the property the exercise asks for (`d2lgrade/audit/accepts.py`, declared per "
           "exercise). *Holes*: the rest; they feed issue 22 and are fixed at the mechanism, never for one mutant. The "
           "kill rate counts neither equivalent mutants nor other correct answers.",
           "", f"Overall: {total} mutants, {killed} killed, {equivalent} equivalent, {accepted} other correct answers, "
               f"{total - killed - equivalent - accepted} holes, kill rate {kill_rate(killed, total, equivalent, accepted)} "
               "of the wrong mutants.", "",
           "| section | exercise | mutants | killed | equivalent | other answer | holes | kill rate |",
           "|---|---|---|---|---|---|---|---|"]
    for a in audits:
        for exercise, n, k, q, c, s, rate in rows([a]):
            out.append(f"| {a.section} | {exercise} | {n} | {k} | {q} | {c} | {s} | {rate} |")
    out += ["", "| section | mutants | killed | equivalent | other answer | holes | kill rate | seconds | mutants per exercise |",
            "|---|---|---|---|---|---|---|---|---|"]
    for a in audits:
        out.append(f"| {a.section} | {a.count()} | {a.count('killed')} | {a.count('equivalent')} | {a.count('accepted')} | "
                   f"{a.count('survived')} | {_rate(a)} | {a.seconds:g} | "
                   f"{'all' if a.limit is None else f'at most {a.limit}'} |")
    for title, verdict in (("Holes (surviving, not proved equivalent)", "survived"),
                           ("Equivalent mutants (identical on every probe and on redrawn inputs)", "equivalent")):
        out += ["", f"## {title}", ""]
        listed = [o for a in audits for e in a.exercises for o in e.outcomes if o.verdict == verdict]
        out += [f"- {o.exercise} `{o.operator}`\n\n  ```diff\n" + _indent(o.diff, "  ") + "\n  ```" for o in listed] or ["None."]
    out += ["", "## Other correct answers (the exercise's property, re-measured by the audit)", ""]
    listed = [o for a in audits for e in a.exercises for o in e.outcomes if o.verdict == "accepted"]
    out += [f"- {o.exercise} `{o.operator}`: {o.accepted}.\n\n  ```diff\n" + _indent(o.diff, "  ") + "\n  ```"
            for o in listed] or ["None."]
    skipped = [(e.exercise, e.skipped) for a in audits for e in a.exercises if e.skipped]
    if skipped or not_audited:
        out += ["", "## Not audited", ""]
        out += [f"- {ex}: {why}" for ex, why in skipped] + [f"- {s}: {why}" for s, why in not_audited.items()]
    return "\n".join(out) + "\n"


NOTES = "\n## Notes\n"


def write_markdown(path: Path, text: str) -> Path:
    """Write the record, keeping the file's hand-written `## Notes` section (a survivor's triage, the
    mechanism gap it points at) across runs."""
    old = path.read_text() if path.exists() else ""
    notes = old[old.index(NOTES):] if NOTES in old else ""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + notes)
    return path


# -- the committed record: every section's latest audit, so that per-section runs add up ----------------
def save_store(path: Path, audits: list[SectionAudit]) -> dict:
    """Merge `audits` into the JSON record at `path` (one entry per section, the latest run wins)."""
    import json
    from dataclasses import asdict
    store = json.loads(path.read_text()) if path.exists() else {}
    for a in audits:
        store[a.section] = asdict(a)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(sorted(store.items(), key=lambda kv: _order(kv[0]))), indent=1) + "\n")
    return store


def load_store(store: dict) -> list[SectionAudit]:
    from d2lgrade.audit.run import ExerciseAudit, Outcome
    out = []
    for section, data in sorted(store.items(), key=lambda kv: _order(kv[0])):
        exercises = [ExerciseAudit(e["exercise"], [Outcome(**o) for o in e["outcomes"]], e.get("skipped", ""))
                     for e in data["exercises"]]
        out.append(SectionAudit(section, exercises, data.get("seconds", 0.0), data.get("limit")))
    return out


def _order(section: str) -> tuple:
    return tuple(int(x) for x in section.split("."))
