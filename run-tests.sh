#!/usr/bin/env bash
# Sets up the analyzer and the test tools, then runs the test suite: sudo ./run-tests.sh [pytest args]
#   sudo ./run-tests.sh            the whole suite (about 25 min on 2 cores)
#   ./run-tests.sh -m unit         the fast tier: hand-built data only, about 15 s
# With no arguments the tests that only use files and processes run on every core (pytest-xdist), then those
# that share the machine's network, PostgreSQL or browser run one at a time.
set -euo pipefail
cd "$(dirname "$0")"
./setup.sh --dev
if (($#)); then
  exec .venv/bin/python -m pytest "$@"
fi
SHARED="netns or live or browser or postgres or root"
status=0
.venv/bin/python -m pytest -n "$(nproc)" -m "not ($SHARED)" || status=$?
.venv/bin/python -m pytest -m "$SHARED" || status=$((status ? status : $?))
exit "$status"
