#!/usr/bin/env bash
# Set up a virtual environment with every test dependency (torch==2.13.0 included)
# and run the whole test suite.  Safe to run again: it reuses .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch==2.13.0 exactly: a CPU build lies on this machine's disk; other specs download GBs.
.venv/bin/python -m pip install -q -e '.[test,torch]'
.venv/bin/python -m pytest -q "$@"
