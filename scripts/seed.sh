#!/usr/bin/env bash
# Set up a virtual environment with glassnet and run the main job: the seed's step.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q -e .
.venv/bin/glassnet seed "$@"
