#!/usr/bin/env bash
# The main job on the embedded default (configs/local.yaml): build and start `lumina` with no
# --config, send it OTLP logs, traces and metrics over HTTP, show what came out of the debug
# and file exporters and the collector's own metrics, then stop it with SIGTERM.
# Ports are picked free and passed through the variables configs/local.yaml reads.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"

echo "==> Building lumina"
cargo build --locked --bin lumina
bin="$target/debug/lumina"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
work="$(mktemp -d)"
grpc=$(free_port); http=$(free_port); metrics=$(free_port)
export LUMINA_OTLP_GRPC_ENDPOINT="127.0.0.1:$grpc"
export LUMINA_OTLP_HTTP_ENDPOINT="127.0.0.1:$http"
export LUMINA_METRICS_ADDRESS="127.0.0.1:$metrics"
export LUMINA_OUTPUT="$work/otlp.jsonl"

echo "==> Starting lumina on the embedded configs/local.yaml (OTLP gRPC :$grpc, HTTP :$http)"
"$bin" >"$work/lumina.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$metrics/health" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/lumina.log"; exit 1; }
  sleep 0.1
done

now=$(date +%s%N)
send() {
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$http/v1/$1" -H 'content-type: application/json' -d "$2")
  echo "  POST /v1/$1 -> HTTP $code"
}
echo "==> Sending OTLP/JSON logs, traces and metrics"
send logs '{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"gp"}}]},"scopeLogs":[{"logRecords":[
  {"timeUnixNano":"'"$now"'","severityText":"INFO","body":{"stringValue":"call started"},"attributes":[{"key":"lumina.event.type","value":{"stringValue":"CALL_STARTED"}},{"key":"lumina.call.guid","value":{"stringValue":"c-42"}}]},
  {"timeUnixNano":"'"$now"'","severityText":"INFO","body":{"stringValue":"call answered"},"attributes":[{"key":"lumina.event.type","value":{"stringValue":"CALL_ANSWERED"}},{"key":"lumina.call.guid","value":{"stringValue":"c-42"}}]}]}]}]}'
send traces '{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"rt"}}]},"scopeSpans":[{"spans":[
  {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"media.leg","kind":2,"startTimeUnixNano":"'"$now"'","endTimeUnixNano":"'"$now"'"}]}]}]}'
send metrics '{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"gp"}}]},"scopeMetrics":[{"metrics":[
  {"name":"calls.active","unit":"1","gauge":{"dataPoints":[{"timeUnixNano":"'"$now"'","asInt":"3"}]}}]}]}]}'

echo "==> Stopping lumina (SIGTERM: receivers stop, pipelines drain, exporters flush)"
kill -TERM "$pid"
wait "$pid" || true
trap - EXIT

echo
echo "==> What the debug exporter logged"
grep -E "Logs:|Traces:|Metrics:" "$work/lumina.log" || true
echo
echo "==> What the file exporter wrote ($LUMINA_OUTPUT): one OTLP/JSON request per line"
python3 - "$LUMINA_OUTPUT" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    req = json.loads(line)
    kind = next(iter(req))
    items = 0
    for r in req[kind]:
        for s in r.get({"resourceLogs": "scopeLogs", "resourceSpans": "scopeSpans", "resourceMetrics": "scopeMetrics"}[kind], []):
            items += len(s.get("logRecords", s.get("spans", s.get("metrics", []))))
    print(f"  {kind}: {items} item(s)  {line[:110].rstrip()}...")
PY
echo
echo "==> Collector log: $work/lumina.log"
tail -n 4 "$work/lumina.log"
