#!/usr/bin/env bash
# Makes sure the programs the tests drive are on PATH, installing Debian's packages for the
# missing ones (as root, or through sudo): promtool (prometheus: checks and unit-tests the
# alert rules in deploy/prometheus), tmux (runs `lumina top` in a real terminal) and
# systemd-analyze (systemd: verifies deploy/systemd/lumina.service).
set -euo pipefail
want=()
command -v promtool >/dev/null || want+=(prometheus)
command -v tmux >/dev/null || want+=(tmux)
command -v systemd-analyze >/dev/null || want+=(systemd)
if [ ${#want[@]} -eq 0 ]; then
  exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
command -v promtool >/dev/null && command -v tmux >/dev/null && command -v systemd-analyze >/dev/null
