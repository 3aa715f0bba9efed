#!/usr/bin/env bash
# Set up PonyClassifier on a fresh Debian/Ubuntu machine: system libraries for Qt
# (offscreen, X11/Xvfb) and QtMultimedia, a virtual environment in .venv, and the package
# with its test extra. Safe to run again; it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  python3-venv python3-dev
  # Qt 6 runtime (offscreen and xcb platforms)
  libegl1 libgl1 libopengl0 libfontconfig1 libfreetype6 libdbus-1-3 libglib2.0-0 libxkbcommon0
  libxkbcommon-x11-0 libx11-xcb1 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1
  libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 libxrender1 libxi6
  # QtMultimedia (webcam, video files)
  libpulse0
  # a virtual screen for GUI screenshots and for running the app on a machine without a display
  xvfb xauth
)

if command -v apt-get >/dev/null 2>&1; then
  missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "Installing system packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
else
  echo "Not a Debian/Ubuntu system: install the Qt runtime libraries and libpulse yourself." >&2
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# torch + torchvision from PyPI (the CUDA build on Linux; it runs on the CPU when there is no GPU).
.venv/bin/python -m pip install -q -e ".[test]"
echo "PonyClassifier is set up in $(pwd)/.venv"
