#!/usr/bin/env bash
# Set up a virtual environment with glassnet and run the main job: the seed's step.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q -e .
.venv/bin/glassnet seed "$@"
# A new shell does not know .venv: say how to reach glassnet from one.
echo
echo "glassnet is installed in $(pwd)/.venv. In a new shell, first run:"
echo "  source $(pwd)/.venv/bin/activate"
echo "or call it as $(pwd)/scripts/glassnet (no activation needed)."
