#!/usr/bin/env bash
# Installs what the attention-view tests need and a fresh machine lacks: a CJK font (Debian's fonts-noto-cjk)
# for the PNG heatmaps' token labels, and Chromium for the headless HTML-viewer tests.
# Idempotent: installs only missing packages, runs `apt-get update` at most once, prints little.
set -euo pipefail

missing=()
for pkg in fonts-noto-cjk chromium; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$pkg")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-test-deps: root is needed to install ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi

export DEBIAN_FRONTEND=noninteractive
# Wait for another apt/dpkg run (up to 10 minutes) instead of failing on its lock.
apt_opts=(-y -qq -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
echo "install-test-deps: installing ${missing[*]}" >&2
updated=0
if ! compgen -G "/var/lib/apt/lists/*_Packages" >/dev/null; then
  $SUDO apt-get "${apt_opts[@]}" update >/dev/null; updated=1
fi
if ! $SUDO apt-get "${apt_opts[@]}" install "${missing[@]}" >/dev/null; then
  # Stale package lists name files the mirror no longer has: refresh once and retry.
  [ "$updated" -eq 1 ] && exit 1
  $SUDO apt-get "${apt_opts[@]}" update >/dev/null
  $SUDO apt-get "${apt_opts[@]}" install "${missing[@]}" >/dev/null
fi
echo "install-test-deps: done" >&2
