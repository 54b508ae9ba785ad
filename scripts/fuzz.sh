#!/usr/bin/env bash
# Runs every fuzz target (tests/fuzz: OTLP protobuf and JSON, GP/RT JSON, config YAML, the
# plugin boundary) for a bounded time each: FUZZ_SECONDS (default 10). Installs what it needs:
# the nightly toolchain (cargo-fuzz builds with sanitizers) and cargo-fuzz, in a cached tools
# directory. A crash fails the script; libFuzzer writes the input under
# tests/fuzz/artifacts/<target>/ and prints how to reproduce it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="${LUMINA_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lumina-tools}"
secs="${FUZZ_SECONDS:-10}"
cd "$root"

if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal
fi
export PATH="$tools/cargo/bin:$PATH"
if ! command -v cargo-fuzz > /dev/null; then
  mkdir -p "$tools"
  (
    flock 9
    command -v cargo-fuzz > /dev/null || cargo install cargo-fuzz --locked --root "$tools/cargo"
  ) 9> "$tools/.cargo-fuzz.lock"
fi

fuzz() {
  local command="$1"
  shift
  cargo +nightly fuzz "$command" --fuzz-dir tests/fuzz "$@"
}
fuzz build
for target in $(cargo +nightly fuzz list --fuzz-dir tests/fuzz); do
  echo "==> fuzz $target for ${secs}s"
  mkdir -p "tests/fuzz/corpus/$target"
  log="$(mktemp)"
  if ! fuzz run "$target" -- -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 > "$log" 2>&1; then
    cat "$log"
    echo "fuzz target $target failed; the input is under tests/fuzz/artifacts/$target/" >&2
    exit 1
  fi
  grep -E 'stat::number_of_executed_units|stat::peak_rss_mb' "$log" || true
  rm -f "$log"
done
