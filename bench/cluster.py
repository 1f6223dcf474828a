"""The Dask scheduler's own cost per submission, and a throughput model for a course on a cluster.

    python bench/cluster.py [--tasks 400] [--cpu-seconds S] [--gpu-seconds S] [--students 500] [--sections 14]
                            [--cpu-workers 10] [--gpu-workers 2] [--gpu-sections 4]

It starts a LocalCluster (2 worker processes, one thread each), sends --tasks no-op tasks that carry a
submission-sized payload (40 kB) through `client.submit` + `as_completed` exactly as the batch does, and
reports the wall time per task minus the work (none): the scheduler's and the transport's overhead.
The model then puts that overhead beside the per-submission grading costs measured by bench/batch.py
(CPU sections) and the GPU training sections, and prints the expected wall time for the course.
Ends with one line of JSON.
"""
import argparse
import json
import logging
import time

PAYLOAD = b"x" * 40_000


def noop(task):
    return {"status": "graded", "bytes": len(task["content"])}


def measure_overhead(n: int) -> float:
    from distributed import Client, LocalCluster, as_completed
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        client.submit(noop, {"content": b""}).result()          # connections warm
        started = time.perf_counter()
        futures = [client.submit(noop, {"student": f"s{i}", "content": PAYLOAD}, pure=False) for i in range(n)]
        for future in as_completed(futures):
            future.result()
        return (time.perf_counter() - started) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=400)
    ap.add_argument("--cpu-seconds", type=float, default=1.0, help="grading one CPU-section submission (bench/batch.py)")
    ap.add_argument("--gpu-seconds", type=float, default=60.0, help="grading one section with training checks on a GPU worker")
    ap.add_argument("--students", type=int, default=500)
    ap.add_argument("--sections", type=int, default=14)
    ap.add_argument("--gpu-sections", type=int, default=4, help="sections whose training checks go to GPU workers")
    ap.add_argument("--cpu-workers", type=int, default=10)
    ap.add_argument("--gpu-workers", type=int, default=2)
    a = ap.parse_args()
    overhead = measure_overhead(a.tasks)
    cpu_tasks = a.students * (a.sections - a.gpu_sections)
    gpu_tasks = a.students * a.gpu_sections
    # Each worker grades one submission at a time; the scheduler dispatches concurrently with grading,
    # so its overhead adds per task only on the single scheduler, not per worker.
    cpu_wall = cpu_tasks * a.cpu_seconds / a.cpu_workers
    gpu_wall = gpu_tasks * a.gpu_seconds / a.gpu_workers
    scheduler = (cpu_tasks + gpu_tasks) * overhead
    wall = max(cpu_wall, gpu_wall) + scheduler
    figures = {"scheduler_overhead_ms_per_task": round(overhead * 1000, 2), "cpu_tasks": cpu_tasks, "gpu_tasks": gpu_tasks,
               "cpu_wall_min": round(cpu_wall / 60, 1), "gpu_wall_min": round(gpu_wall / 60, 1),
               "scheduler_min": round(scheduler / 60, 2), "expected_wall_min": round(wall / 60, 1)}
    print(f"scheduler + transport overhead: {overhead * 1000:.2f} ms per submission ({a.tasks} tasks, 2 local workers)")
    print(f"course: {a.students} students x {a.sections} sections = {cpu_tasks + gpu_tasks} submissions "
          f"({gpu_tasks} with training checks on {a.gpu_workers} GPU workers at {a.gpu_seconds:g} s, "
          f"{cpu_tasks} on {a.cpu_workers} CPU workers at {a.cpu_seconds:g} s)")
    print(f"expected wall time: {wall / 60:.1f} min (CPU side {cpu_wall / 60:.1f} min, GPU side {gpu_wall / 60:.1f} min, "
          f"scheduler {scheduler / 60:.2f} min)")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
