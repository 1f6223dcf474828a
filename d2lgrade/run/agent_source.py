"""The runtime agent as the student runtime receives it: one source text, run as `_d2lgrade_agent`.

Its jobs sit in files of their own (requests in agent.py, offline datasets in offline_datasets.py); the
runtime cannot import them, so they travel together, in this order (agent.py first, so that its line
numbers in a traceback are its file's). Standard library only: forkserver.py loads this file by path,
the grader imports it from the package.
"""
import os

AGENT_FILES = ("agent.py", "offline_datasets.py")


def agent_source() -> str:
    folder = os.path.dirname(os.path.abspath(__file__))
    parts = []
    for name in AGENT_FILES:
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            parts.append(f.read())
    return "\n".join(parts)
