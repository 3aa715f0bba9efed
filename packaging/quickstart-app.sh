#!/usr/bin/env bash
# Quick start 1: set everything up and open the app on the built-in pony demo project.
# On a machine without a display (a server, a container) the app runs on a virtual screen.
set -euo pipefail
cd "$(dirname "$0")/.."
bash packaging/setup.sh
if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && command -v xvfb-run >/dev/null 2>&1; then
  echo "No display found: running on a virtual screen (xvfb-run)."
  exec xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/ponyclassifier --demo "$@"
fi
exec .venv/bin/ponyclassifier --demo "$@"
