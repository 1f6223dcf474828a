"""Pinned CPU numerics: the same floating-point results on every x86-64 machine.

A training run of a few hundred SGD steps is chaotic: reductions summed in another order (AVX-512 adds
16 floats at a time, AVX2 8), another BLAS kernel, or another thread split move the weights by an ulp,
and after 300 steps held-out accuracy differs by several points (docs/NUMERICS.md has the figures).
Verdicts of training checks must not depend on the CPU, so every process that trains for a verdict (the
student runtime and the reference runs) starts with these variables set *before* torch is imported:
ATen's vectorised kernels, MKL (conditional numerical reproducibility) and oneDNN all take the AVX2
code path, and each uses one thread. AVX2 is on every x86-64 CPU sold since 2013-2015; where it is
missing, everything falls back to the portable code path and the report says verdicts may differ.
"""
from __future__ import annotations

import os
import platform

PINNED_AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2,STRICT", "ONEDNN_MAX_CPU_ISA": "AVX2"}
PINNED_PORTABLE = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE", "ONEDNN_MAX_CPU_ISA": "SSE41"}
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def cpu_has_avx2() -> bool:
    try:
        with open("/proc/cpuinfo") as info:
            return " avx2" in info.read()
    except OSError:
        return False


def pinned_environment() -> dict[str, str]:
    """The variables a training process starts with (x86-64 Linux); empty elsewhere, see `note()`."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return dict(ONE_THREAD)
    return {**(PINNED_AVX2 if cpu_has_avx2() else PINNED_PORTABLE), **ONE_THREAD}


def note() -> str:
    """What the report says when this machine cannot take the pinned path."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return (f"training checks ran on {platform.machine()}, whose floating-point results differ from the "
                "course's x86-64 grading machines: their figures may differ slightly from the final grade.")
    if not cpu_has_avx2():
        return ("this CPU has no AVX2: training checks ran on the portable code path, whose figures may "
                "differ slightly from the course's grading machines.")
    return ""
