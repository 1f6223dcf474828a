"""`python grade.py --audit [SECTION ...]`: mutants of the references, graded by the graders."""
from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from d2lgrade.core.errors import UserError
from d2lgrade.core.sections import ROOT, all_sections, find_section

AUDIT_MD = ROOT / "docs" / "AUDIT.md"


def add_arguments(p) -> None:
    p.add_argument("--audit", nargs="*", metavar="SECTION",
                   help="mutate each reference answer and report how many mutants the checks let through "
                        "(no SECTION: every section); writes docs/AUDIT.md")
    p.add_argument("--audit-limit", type=int, metavar="N", help="with --audit: at most N mutants per exercise (CI-sized runs)")
    p.add_argument("--audit-workers", type=int, default=1, metavar="N",
                   help="with --audit: sections audited at once, each in its own process and runtime (default 1)")
    p.add_argument("--audit-md", type=Path, default=AUDIT_MD, metavar="FILE",
                   help="with --audit: the Markdown record to update (default docs/AUDIT.md; a .json beside it keeps every section's figures)")


def wanted(args) -> bool:
    return args.audit is not None


def main(args) -> int:
    ids = list(args.audit) + ([args.target] if args.target else [])
    if args.audit_limit is not None and args.audit_limit < 1:
        raise UserError(f"--audit-limit must be at least 1 (got {args.audit_limit}); leave it out to grade every mutant.")
    if args.audit_workers < 1:
        raise UserError(f"--audit-workers must be at least 1 (got {args.audit_workers}).")
    sections = [find_section(i).id for i in ids if "/" not in i] if ids else [s.id for s in all_sections()]
    if any("/" in i for i in ids):
        raise UserError("--audit takes whole sections (7.3), not exercises; e.g. `python grade.py --audit 7.3`.")
    from d2lgrade.audit import report            # torch loads only once the arguments are valid
    from d2lgrade.audit.run import audit_section
    started = time.monotonic()
    say = (lambda line: None) if args.json else (lambda line: print(line, file=sys.stderr, flush=True))
    audits = []
    if args.audit_workers == 1 or len(sections) == 1:
        for s in sections:
            audits.append(audit_section(s, limit=args.audit_limit, executor=_executor(args), progress=say))
            say(f"{s}: audited in {audits[-1].seconds:g} s")
    else:
        with ProcessPoolExecutor(args.audit_workers, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(audit_section, s, limit=args.audit_limit, executor=_executor(args)) for s in sections]
            for s, f in zip(sections, futures):
                audits.append(f.result())
                say(f"{s}: audited in {audits[-1].seconds:g} s")
    store = report.save_store(args.audit_md.with_suffix(".json"), audits)
    everything = report.load_store(store)
    command = "python grade.py --audit " + " ".join(sections) + (f" --audit-limit {args.audit_limit}" if args.audit_limit else "")
    audited = {a.section for a in everything}
    not_audited = {s.id: "not audited yet (run `python grade.py --audit " + s.id + "`)" for s in all_sections()
                   if s.id not in audited}
    report.write_markdown(args.audit_md, report.markdown(everything, command=command,
                                                         not_audited=not_audited))
    if args.json:
        print(json.dumps(report.to_json(audits), indent=2))
    else:
        print(report.terminal(audits))
        print(f"{round(time.monotonic() - started, 1)} s; wrote {args.audit_md}")
    return 0


def _executor(args) -> str | None:
    return None if args.executor == "auto" else args.executor
