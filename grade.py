#!/usr/bin/env python3
"""Grade your Dive into Deep Learning exercises: `python grade.py 7.3` (see --help)."""
import sys

from d2lgrade.cli import main

if __name__ == "__main__":
    sys.exit(main())
