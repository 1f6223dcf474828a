"""Resource limits of the student runtime, with the defaults a course would pick."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class Limits:
    call_seconds: float = 20.0          # CPU time of one probe call (a batch of calls gets this per call)
    cell_seconds: float = 60.0          # one notebook cell
    total_seconds: float = 600.0        # everything the runtime does for one submission
    memory_bytes: int = 8 * 2**30       # all the runtime's processes together (memory cgroup), and each
                                        # one's address space on CPU (torch alone maps ~4 GiB)
    max_processes: int = 64             # processes/threads of the runtime's user namespace
    file_bytes: int = 256 * 2**20       # largest file the runtime may write
    output_bytes: int = 1 * 2**20       # stdout/stderr kept per submission; the rest is dropped
    disk_bytes: int = 512 * 2**20       # all the files of the runtime's working directory together
    disk_files: int = 10_000            # files and folders the runtime may create there

    @staticmethod
    def call_wall_seconds(cpu_seconds: float) -> float:
        """The wall-clock limit of a call whose CPU time is limited to `cpu_seconds`. It only has to end calls
        that wait instead of computing; it is wide enough that a call within its CPU time on a machine four
        times oversubscribed still finishes, so that no verdict depends on the machine's load."""
        return 4 * cpu_seconds + 10

    def to_dict(self) -> dict:
        return asdict(self)
