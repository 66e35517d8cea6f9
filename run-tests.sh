#!/usr/bin/env bash
# Sets up the analyzer and the test tools, then runs the test suite: sudo ./run-tests.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")"
./setup.sh --dev
exec .venv/bin/python -m pytest "$@"
