#!/usr/bin/env bash
# One-time set-up: installs d2l-grade's dependencies into the active Python (3.11).
# d2l 1.0.3 pins 2023-era numpy/pandas/scipy that do not build here, so it is installed without its
# pins; pyproject.toml lists what `from d2l import torch as d2l` really imports.
set -euo pipefail
cd "$(dirname "$0")"
python -m pip install --disable-pip-version-check -q -e ".[dev]"
python -m pip install --disable-pip-version-check -q --no-deps "d2l==1.0.3"
python - <<'PY'
from d2l import torch as d2l  # noqa: F401  (fails loudly here rather than in a student's notebook)
import torch, torchvision
print(f"d2l-grade ready: torch {torch.__version__}, torchvision {torchvision.__version__}, d2l 1.0.3")
PY
