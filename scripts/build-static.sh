#!/usr/bin/env bash
# Builds a static Lumina binary (x86_64-unknown-linux-musl, release) into dist/lumina, with the
# CA bundle beside it for deploy/docker/Dockerfile, and proves it: the binary has no dynamic
# section, runs, validates every file in configs/ and serves the embedded default.
# Needs musl-gcc (Debian's musl-tools: mimalloc, ring and zstd are C); installs it and the
# Rust target when missing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
triple=x86_64-unknown-linux-musl

if ! command -v musl-gcc >/dev/null; then
  sudo=""; [ "$(id -u)" != 0 ] && sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends musl-tools >/dev/null
fi
rustup target list --installed | grep -qx "$triple" || rustup target add "$triple"

CC_x86_64_unknown_linux_musl=musl-gcc \
  cargo build --release --locked -p lumina-collector --bin lumina --target "$triple"
mkdir -p dist
cp "$target/$triple/release/lumina" dist/lumina
# The release profile keeps line tables for backtraces; a shipped binary goes without.
strip dist/lumina
cp /etc/ssl/certs/ca-certificates.crt dist/

# Static: no program interpreter, no dynamic section.
if readelf -l dist/lumina | grep -q INTERP || readelf -d dist/lumina | grep -q NEEDED; then
  echo "dist/lumina is not static" >&2
  exit 1
fi
dist/lumina --version
for f in configs/*.yaml; do
  case "$f" in *.tests.yaml) continue ;; esac
  dist/lumina validate --config "$f" >/dev/null
done
# The embedded default runs and answers /health.
log="$(mktemp)"
dist/lumina run >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do
  if curl -sf http://127.0.0.1:8888/health >/dev/null; then break; fi
  sleep 0.2
done
curl -sf http://127.0.0.1:8888/health
echo
kill -TERM $pid
wait $pid
echo "dist/lumina: static, $(du -h dist/lumina | cut -f1), runs."
