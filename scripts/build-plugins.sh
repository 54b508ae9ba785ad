#!/usr/bin/env bash
# Builds the example plugins into $LUMINA_PLUGIN_DIR (default: <cargo target dir>/plugins):
#   WebAssembly components from Rust (wasm32-wasip2) and from Python (componentize-py), and
#   native libraries. Installs the wasm32-wasip2 target and componentize-py if missing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
out="${LUMINA_PLUGIN_DIR:-$target/plugins}"
mkdir -p "$out"

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi

# Each WebAssembly plugin is built on its own: the SDK feature it enables selects the one WIT
# world its component exports.
for crate in redact-numbers webhook-exporter cdr-receiver misbehave; do
  cargo build --locked --quiet -p "$crate" --target wasm32-wasip2 --profile plugin
  cp "$target/wasm32-wasip2/plugin/${crate//-/_}.wasm" "$out/"
done

cargo build --locked --quiet -p redact-numbers -p native-bad-abi --profile plugin
cp "$target/plugin/libredact_numbers.so" "$target/plugin/libnative_bad_abi.so" "$out/"

python="$("$root/scripts/setup-python.sh")"
"$(dirname "$python")/componentize-py" -d "$root/sdk/wit/v0.2.0" -w processor-plugin \
  componentize app -p "$root/examples/py-sampler" -o "$out/py_sampler.wasm" >/dev/null

ls -1 "$out"
