#!/usr/bin/env bash
# Makes sure `promtool` (Debian's prometheus package) is on PATH: the alert rules in
# deploy/prometheus are checked and unit-tested with it. Installs the package when missing
# (as root, or through sudo).
set -euo pipefail
if command -v promtool >/dev/null; then
  exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
command -v promtool >/dev/null
