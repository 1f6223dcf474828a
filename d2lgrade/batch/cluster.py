"""The batch on a Dask cluster: the same outcomes as the local WorkerPool, graded on `distributed` workers.

`python grade.py --batch --dask tcp://HOST:8786` sends each submission's content (never a path on a
shared disk) to the cluster; a worker grades it with the same executors and sandbox as a local batch
(`worker.grade_task`) and sends the report back; the command alone writes the gradebook. Dask's
scheduler re-runs the task of a worker that dies on another worker, and each future resolves once, so a
lost worker neither loses nor duplicates a row.

Workers must grade with the very code the command would: before anything is sent, every worker reports
the hash of its d2lgrade package and of each section's grader (core/version.py), and a worker that
differs is refused by name. With `--device cuda`, sections with training checks go only to workers
started with a `GPU` resource (`dask worker ADDRESS --resources GPU=1`); the rest go anywhere.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator

from d2lgrade.batch import worker
from d2lgrade.core.version import grader_version
from d2lgrade.core.errors import UserError
from d2lgrade.run.executor import RuntimeOptions
from d2lgrade.core.sections import ROOT, Section

GPU = "GPU"
CONNECT_SECONDS = 20


@lru_cache(maxsize=1)
def package_version() -> str:
    """A hash of the grading pipeline itself (d2lgrade/**/*.py and its templates)."""
    digest = hashlib.sha256()
    package = ROOT / "d2lgrade"
    for path in sorted(p for p in package.rglob("*") if p.suffix in (".py", ".j2") and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def versions(section_ids: Iterable[str]) -> dict:
    """What a worker (or the command) grades with: the package's hash and each section's grader version."""
    return {"package": package_version(), "sections": {s: grader_version(Section(s)) for s in sorted(section_ids)}}


def needs_gpu(section_id: str) -> bool:
    """A section whose exercises train networks: its checks go to GPU workers under --device cuda."""
    return any("training" in kind for ex in Section(section_id).spec.exercises for kind in ex.kinds)


def grade_remote(task: dict, executor: str, options: RuntimeOptions, expected: dict) -> dict:
    """Runs ON a worker: grade the submission whose bytes travel in `task["content"]`."""
    mine = versions([task["section"]])
    if mine["package"] != expected["package"] or mine["sections"] != {task["section"]: expected["sections"][task["section"]]}:
        return {"status": "error", "message": f"refused: this worker grades {task['section']} with other code "
                f"(package {mine['package']}, grader {mine['sections'][task['section']]}) than the command "
                f"(package {expected['package']}, grader {expected['sections'][task['section']]})"}
    options = _options_here(options)
    with tempfile.TemporaryDirectory(prefix="d2lgrade-dask-") as folder:
        path = Path(folder) / task["student"] / Path(task["path"]).name
        path.parent.mkdir()
        path.write_bytes(task["content"])
        outcome = worker.grade_task({**task, "path": str(path)}, executor, options)
    if outcome.get("report"):
        outcome["report"]["submission"] = task["path"]      # the command's path, not the worker's copy
    return {**outcome, "memory": worker.peak_memory(), "worker": os.getpid()}


def _options_here(options: RuntimeOptions) -> RuntimeOptions:
    """The device this worker can honour: a CPU worker grades a section without training checks on the
    CPU even under --device cuda (those never reach it otherwise)."""
    import torch
    from dataclasses import replace
    has_gpu = torch.cuda.is_available()
    device = {"auto": "cuda" if has_gpu else "cpu", "cuda": "cuda" if has_gpu else "cpu"}.get(options.device, options.device)
    return replace(options, device=device)


@dataclass
class DaskPool:
    """A WorkerPool with the same `run(tasks)` contract, on a Dask scheduler at `address`."""
    address: str
    executor: str
    options: RuntimeOptions
    on_start: object = None            # local-pool hook; a cluster does not report task starts
    _client: object = field(default=None, repr=False)

    def run(self, tasks: Iterable[dict]) -> Iterator[dict]:
        from distributed import as_completed
        tasks = list(tasks)
        client = self._connect()
        expected = versions({t["section"] for t in tasks})
        self._check_workers(client, expected, tasks)
        futures = {}
        for task in tasks:
            content = Path(task["path"]).read_bytes()
            gpu = self.options.device == "cuda" and needs_gpu(task["section"])
            future = client.submit(grade_remote, {**task, "content": content}, self.executor, self.options, expected,
                                   key=f"grade-{task['student']}-{task['section']}-{task['content_hash'][:12]}",
                                   resources={GPU: 1} if gpu else None, pure=False)
            futures[future] = task
        try:
            for future in as_completed(futures):
                task = futures[future]
                try:
                    outcome = future.result()
                except Exception as exc:     # e.g. the task killed every worker it met (KilledWorker)
                    outcome = {"status": "error", "message": f"the cluster could not grade it ({type(exc).__name__}: {exc})"}
                yield {**task, **outcome}
        finally:
            for future in futures:
                future.cancel()

    def _connect(self):
        from distributed import Client
        if self._client is None:
            try:
                self._client = Client(self.address, timeout=CONNECT_SECONDS)
            except (OSError, TimeoutError) as exc:
                raise UserError(f"cannot reach the Dask scheduler at {self.address} ({exc}); start it with "
                                "`dask scheduler` and check the address (see the README).") from None
        return self._client

    def _check_workers(self, client, expected: dict, tasks: list[dict]) -> None:
        workers = client.scheduler_info(n_workers=-1)["workers"]
        if not workers:
            raise UserError(f"the Dask scheduler at {self.address} has no workers; start some with "
                            f"`dask worker {self.address}` in the course folder.")
        reported = client.run(versions, sorted(expected["sections"]))
        wrong = sorted(addr for addr, mine in reported.items() if mine != expected)
        if wrong:
            raise UserError(f"worker{'s' if len(wrong) > 1 else ''} {', '.join(wrong)} grade with other code than "
                            "this command (another version of the course folder); update them and restart them.")
        if self.options.device == "cuda" and any(needs_gpu(t["section"]) for t in tasks) and \
                not any(info.get("resources", {}).get(GPU) for info in workers.values()):
            raise UserError(f"--device cuda needs a worker with a GPU, and none of the {len(workers)} workers at "
                            f"{self.address} offers one; start one with `dask worker {self.address} --resources GPU=1`, "
                            "or grade with --device cpu.")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
