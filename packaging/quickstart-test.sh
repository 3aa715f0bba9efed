#!/usr/bin/env bash
# Quick start 2: set everything up and run the whole test suite (core and GUI, headless).
set -euo pipefail
cd "$(dirname "$0")/.."
bash packaging/setup.sh
export QT_QPA_PLATFORM=offscreen
exec .venv/bin/python -m pytest -q "$@"
