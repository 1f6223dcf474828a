"""The runtime agent as the student runtime receives it: one source text, run as `_d2lgrade_agent`.

Its jobs sit in files of their own in d2lgrade/inside/ (requests in agent.py, offline datasets in
offline_datasets.py); the runtime cannot import them, so they travel together, in this order (agent.py
first, so that its line numbers in a traceback are its file's). The kernel and live engines run this text
as a cell; the warm engine sends it to its parent process (inside/forkserver.py) as its first message.
"""
from d2lgrade import inside

AGENT_FILES = ("agent.py", "offline_datasets.py")


def agent_source() -> str:
    return "\n".join((inside.FOLDER / name).read_text(encoding="utf-8") for name in AGENT_FILES)
