"""Launch a command inside the student runtime's limits, then exec it.

Run as `python sandbox.py '<json config>' -- command...`. It uses only the standard library
because it runs before (and outside) the package, as the first step of the kernel's argv.
What is applied here lasts for the whole process tree of the runtime: operating-system limits,
not Python-level tricks the student code could undo.
"""
import json
import os
import resource
import signal
import sys


def apply(config):
    # Own session and process group, so the grader can kill the whole tree (fork bombs included).
    # jupyter_client already starts kernels that way, and then setsid() says EPERM.
    if os.getpgrp() != os.getpid():
        os.setsid()
    # Writing past RLIMIT_FSIZE should fail the write, not kill the kernel with SIGXFSZ.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    limits = {
        resource.RLIMIT_FSIZE: config.get("file_bytes"),
        resource.RLIMIT_CORE: 0,
    }
    memory = config.get("memory_bytes")
    if memory:
        # CUDA reserves huge virtual ranges, so address space is only limited on CPU runs.
        limits[resource.RLIMIT_DATA if config.get("device", "cpu").startswith("cuda") else resource.RLIMIT_AS] = memory
    # RLIMIT_NPROC counts every process of the user, so it is only safe inside a private user
    # namespace, where the count starts at zero (see isolation, which creates one).
    if config.get("max_processes") and config.get("private_user_namespace"):
        limits[resource.RLIMIT_NPROC] = config["max_processes"]
    for which, value in limits.items():
        if value is None:
            continue
        soft, hard = resource.getrlimit(which)
        value = int(value) if hard == resource.RLIM_INFINITY else min(int(value), hard)
        resource.setrlimit(which, (value, value))
    if config.get("cwd"):
        os.chdir(config["cwd"])


def main(argv):
    config = json.loads(argv[1])
    command = argv[argv.index("--") + 1:]
    apply(config)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv)
