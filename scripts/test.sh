#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: formatting, lints, every test (unit, integration
# and end-to-end against real clients), and `lumina validate` over every file in configs/.
# It installs what the tests need (the OpenTelemetry Python SDK and componentize-py in a cached
# virtualenv, kinesalite and the AppSync simulator from npm, the wasm32-wasip2 target, promtool,
# tmux and systemd-analyze from Debian's packages) and
# builds the example plugins the tests load.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"

step() { printf '\n==> %s\n' "$*"; }

step "Toolchain"
for component in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
    rustup component add "$component"
  fi
done
cargo --version

step "Test tools (OpenTelemetry Python SDK)"
LUMINA_PYTHON="$("$root/scripts/setup-python.sh")"
export LUMINA_PYTHON
"$LUMINA_PYTHON" -c 'import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.grpc' && echo "ok: $LUMINA_PYTHON"

step "Test services (kinesalite, AppSync simulator)"
LUMINA_SERVICES_DIR="$("$root/scripts/setup-services.sh")"
export LUMINA_SERVICES_DIR
node -e "require('$LUMINA_SERVICES_DIR/node_modules/kinesalite'); require('$LUMINA_SERVICES_DIR/node_modules/@aws-amplify/amplify-appsync-simulator')" && echo "ok: $LUMINA_SERVICES_DIR"

step "promtool, tmux, systemd-analyze (deploy/ checks, lumina top in a terminal)"
"$root/scripts/setup-tools.sh"
promtool --version | head -1

step "Example plugins (WebAssembly and native) for the end-to-end tests"
"$root/scripts/build-plugins.sh"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
cargo test --workspace --locked

step "cargo package -p lumina-sdk (the SDK builds on its own, from what it ships, WIT included)"
cargo package -p lumina-sdk --locked --allow-dirty
tar -tzf "$target/package/lumina-sdk-$(cargo pkgid -p lumina-sdk | sed 's/.*[#@]//').crate" | grep -q 'wit/v0.2.0/plugin.wit'

step "Fuzz targets (a short bounded run each; scripts/fuzz.sh)"
FUZZ_SECONDS="${FUZZ_SECONDS:-10}" "$root/scripts/fuzz.sh"

step "lumina validate configs/*.yaml (their tests, configs/*.tests.yaml, run in cargo test: tests/e2e/config_tests.rs)"
for f in configs/*.yaml; do
  case "$f" in *.tests.yaml) continue ;; esac
  "$target/debug/lumina" validate --config "$f"
done

step "All checks passed."
