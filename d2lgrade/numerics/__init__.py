"""Pinned CPU numerics: the same floating-point results on every x86-64 machine, Intel or AMD.

A training run of a few hundred SGD steps is chaotic: reductions summed in another order (AVX-512 adds
16 floats at a time, AVX2 8), another BLAS kernel, or another thread split move the weights by an ulp,
and after 300 steps held-out accuracy differs by several points (docs/NUMERICS.md has the figures).
Verdicts of training checks must not depend on the CPU, so every process that trains for a verdict (the
student runtime and the reference runs) takes one code path whose order of operations is fixed by code:

- environment, set before torch starts (`pinned_environment`): ATen's vectorised kernels on AVX2, MKL on its
  COMPATIBLE branch (SSE2: MKL ignores every other branch on AMD processors and takes its own dispatch, which
  is how the AVX2 branch gave other bits on an EPYC than on a Xeon), one thread, no dynamic thread counts;
- in the process (`inside/agent.py: pin_numerics`, which the runtime's setup and the pinned child both call):
  oneDNN and NNPACK off, since both choose kernels and blocking from the cache sizes and core count.

Where AVX2 is missing, ATen falls back to its portable path and the report says verdicts may differ.

`python -m d2lgrade.numerics --fingerprint` trains a small fixed network on fixed data along that path and
compares the digest of its weights with the one committed here (FINGERPRINT): a machine that computes
anything else fails loudly.
"""
from __future__ import annotations

import platform

PINNED_AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "COMPATIBLE"}
PINNED_PORTABLE = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"}
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
              "MKL_DYNAMIC": "FALSE", "OMP_DYNAMIC": "FALSE"}
# What the in-process half does (inside/agent.py: pin_numerics); part of every reference run's cache key.
IN_PROCESS = "oneDNN off, NNPACK off, 1 thread"
# The digest of `fingerprint_run()` on the pinned path (measured on an AMD EPYC, Zen 4; see docs/NUMERICS.md).
FINGERPRINT = "d3db0301e528ca1ce1fbfff4d32f2e07b27f479533c1aa1ebf83ae32e3b27d7c"


def cpu_has_avx2() -> bool:
    try:
        with open("/proc/cpuinfo") as info:
            return " avx2" in info.read()
    except OSError:
        return False


def cpu_name() -> str:
    """The CPU's model name as the kernel reports it (e.g. "AMD EPYC", "Intel(R) Xeon(R) Processor")."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def pinned_environment() -> dict[str, str]:
    """The variables a training process starts with (x86-64 Linux); one thread only elsewhere, see `note()`."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return dict(ONE_THREAD)
    return {**(PINNED_AVX2 if cpu_has_avx2() else PINNED_PORTABLE), **ONE_THREAD}


# Prefixes of variables that steer a math library's code path or threads: a pinned child starts without any
# the grader's own environment holds, then takes the pinned ones.
STEERING = ("ATEN_", "MKL_", "ONEDNN_", "DNNL_", "OMP_", "GOMP_", "KMP_", "OPENBLAS_", "TORCH_MKLDNN")


def child_environment(base: dict[str, str]) -> dict[str, str]:
    """`base` without any variable that steers numerics, plus the pinned ones."""
    return {**{k: v for k, v in base.items() if not k.startswith(STEERING)}, **pinned_environment()}


def describe_path() -> str:
    """The pinned path in words (reports, the fingerprint, cache keys)."""
    env = pinned_environment()
    aten = env.get("ATEN_CPU_CAPABILITY", "the machine's choice")
    return f"ATen {aten}, MKL {env.get('MKL_CBWR', 'the machine’s choice')}, {IN_PROCESS}"


def note() -> str:
    """What the report says when this machine cannot take the pinned path."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return (f"training checks ran on {platform.machine()}, whose floating-point results differ from the "
                "course's x86-64 grading machines: their figures may differ slightly from the final grade.")
    if not cpu_has_avx2():
        return ("this CPU has no AVX2: training checks ran on the portable code path, whose figures may "
                "differ slightly from the course's grading machines.")
    return ""
