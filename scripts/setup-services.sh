#!/usr/bin/env bash
# Installs (once) the local stand-ins for AWS services that the end-to-end tests start:
# kinesalite (Kinesis), dynalite (DynamoDB) and the Amplify AppSync simulator, from tests/services/package-lock.json
# into a cached directory, and prints that directory. Safe to run concurrently and repeatedly.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="${LUMINA_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lumina-tools}"
dir="$tools/services"
stamp="$dir/.lock.sha256"
mkdir -p "$tools"
exec 9>"$tools/.services.lock"
flock 9
want="$(cat "$root/tests/services/package.json" "$root/tests/services/package-lock.json" | sha256sum | cut -d' ' -f1)"
if [ ! -d "$dir/node_modules" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "Installing kinesalite, dynalite and the AppSync simulator into $dir ..." >&2
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$root/tests/services/package.json" "$root/tests/services/package-lock.json" "$dir/"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
  echo "$want" > "$stamp"
fi
cp "$root"/tests/services/*.js "$dir/"
echo "$dir"
