#!/usr/bin/env bash
# Creates (once) the Python virtualenv the end-to-end tests use for the official OpenTelemetry
# Python SDK, and prints the path of its python. Safe to run concurrently and repeatedly.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="${LUMINA_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lumina-tools}"
req="$root/tests/python/requirements.txt"
venv="$tools/venv"
stamp="$venv/.requirements.sha256"
mkdir -p "$tools"
exec 9>"$tools/.python.lock"
flock 9
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "Installing the OpenTelemetry Python SDK into $venv ..." >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2
  echo "$want" > "$stamp"
fi
echo "$venv/bin/python"
