#!/usr/bin/env bash
# Set up a virtual environment with every test dependency (torch==2.13.0 included),
# Debian's chromium for the HTML rendering test, and run the whole test suite.
# Safe to run again: it reuses .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's chromium (for the explain HTML test)..."
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "note: chromium is not installed and this is not root; the browser test will skip"
  fi
fi
# axe-core for the studio's accessibility scan (tests/test_studio_browser.py finds it in
# tests/_axe; without npm that one test skips, saying so).
if command -v npm >/dev/null 2>&1 && [ ! -f tests/_axe/node_modules/axe-core/axe.min.js ]; then
  npm install --prefix tests/_axe --no-audit --no-fund --silent axe-core@4
fi
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch==2.13.0 exactly: a CPU build lies on this machine's disk; other specs download GBs.
.venv/bin/python -m pip install -q -e '.[test,torch]'
# A new shell does not know .venv: say how to reach glassnet from one
# (said before the tests, so the test runner's summary stays the last line).
echo
echo "glassnet is installed in $(pwd)/.venv. In a new shell, first run:"
echo "  source $(pwd)/.venv/bin/activate"
echo "or call it as $(pwd)/scripts/glassnet (no activation needed)."
echo
# Lint and types first: quick, and a failure there is a failure of the suite.
.venv/bin/ruff check src tests bench fuzz
.venv/bin/mypy
.venv/bin/python -m pytest -q "$@"
