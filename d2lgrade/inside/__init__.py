"""Code that runs inside the student runtime or its sandbox launcher.

Every file here is loaded by path or sent as source text into a process that cannot see this package, so
it imports nothing from d2lgrade (the standard library, torch and the files beside it only); the grader
may import these modules for the names it shares with them. tests/test_layers.py enforces the rule.
"""
from pathlib import Path

# Where the path-based loaders (the kernel and warm launch commands, agent_source.py) find these files.
FOLDER = Path(__file__).resolve().parent
