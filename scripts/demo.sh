#!/usr/bin/env bash
# The main job on the embedded default (configs/local.yaml): build and start `lumina` with no
# --config; simulate voice calls (GP and RT events, out of order and duplicated) into the `gp`
# and `rt` receivers and show the dialogues `dialogue_assembly` made of them, checked against
# the simulator's ground truth; send plain OTLP logs, traces and metrics too; stop with SIGTERM
# and show what the exporters wrote, including the call metrics.
# Ports are picked free and passed through the variables configs/local.yaml reads.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"

echo "==> Building lumina and the call simulator"
cargo build --locked --bin lumina --bin lumina-callsim
bin="$target/debug/lumina"
callsim="$target/debug/lumina-callsim"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
work="$(mktemp -d)"
grpc=$(free_port); http=$(free_port); metrics=$(free_port)
gp_grpc=$(free_port); gp_http=$(free_port); rt_grpc=$(free_port); rt_http=$(free_port)
export LUMINA_OTLP_GRPC_ENDPOINT="127.0.0.1:$grpc"
export LUMINA_OTLP_HTTP_ENDPOINT="127.0.0.1:$http"
export LUMINA_GP_GRPC_ENDPOINT="127.0.0.1:$gp_grpc" LUMINA_GP_HTTP_ENDPOINT="127.0.0.1:$gp_http"
export LUMINA_RT_GRPC_ENDPOINT="127.0.0.1:$rt_grpc" LUMINA_RT_HTTP_ENDPOINT="127.0.0.1:$rt_http"
export LUMINA_METRICS_ADDRESS="127.0.0.1:$metrics"
export LUMINA_OUTPUT="$work/otlp.jsonl"
export LUMINA_DIALOGUES="$work/dialogues.jsonl"
export LUMINA_STATE_DIR="$work/state"

echo "==> Starting lumina on the embedded configs/local.yaml (OTLP gRPC :$grpc, HTTP :$http)"
"$bin" >"$work/lumina.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$metrics/health" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/lumina.log"; exit 1; }
  sleep 0.1
done

echo "==> Simulating 200 calls across 10 organizations into gp (:$gp_grpc) and rt (:$rt_grpc)"
echo "    (20% of events out of order, 5% sent twice, 5% of calls with a late event)"
"$callsim" --gp "127.0.0.1:$gp_grpc" --rt "127.0.0.1:$rt_grpc" --calls 200 --organizations 10 \
  --disorder 0.2 --duplicate 0.05 --late 0.05 --truth "$work/truth.jsonl"
echo "==> A malformed native JSON event next to a valid one (POST /v1/events)"
curl -s -X POST "http://127.0.0.1:$gp_http/v1/events" -H 'content-type: application/json' -d '[
  {"eventId":"demo-1","eventType":"CALL_STARTED","timestamp":"'"$(date -u +%Y-%m-%dT%H:%M:%SZ)"'","organizationId":"org-demo","accountId":"acc-1","callGuid":"c-1","legGuid":"l-1","callerNumber":"+442071234567","calledNumber":"+15551234567","direction":"INBOUND"},
  {"eventId":"demo-2","eventType":"CALL_EXPLODED","timestamp":"2026-01-01T00:00:00Z","organizationId":"org-demo","accountId":"acc-1","callGuid":"c-1","legGuid":"l-1"}]'
echo

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
echo "==> Dialogues assembled ($LUMINA_DIALOGUES), newest revision of each, against the ground truth"
python3 - "$LUMINA_DIALOGUES" "$work/truth.jsonl" "$LUMINA_OUTPUT" <<'PY'
import collections, json, sys
def value(v):
    if "kvlistValue" in v: return {kv["key"]: value(kv.get("value", {})) for kv in v["kvlistValue"].get("values", [])}
    if "arrayValue" in v: return [value(x) for x in v["arrayValue"].get("values", [])]
    for k in ("stringValue", "boolValue", "doubleValue"):
        if k in v: return v[k]
    if "intValue" in v: return int(v["intValue"])
    return None
newest = {}
for line in open(sys.argv[1]):
    for r in json.loads(line)["resourceLogs"]:
        for s in r["scopeLogs"]:
            for rec in s["logRecords"]:
                d = value(rec["body"])
                if d["dialogueId"] not in newest or newest[d["dialogueId"]]["revision"] < d["revision"]:
                    newest[d["dialogueId"]] = d
truth = {d["dialogueId"]: d for d in map(json.loads, open(sys.argv[2]))}
strip = lambda d: {k: v for k, v in d.items() if k not in ("createdAt", "updatedAt", "revision")}
matching = sum(1 for k, t in truth.items() if k in newest and strip(newest[k]) == t)
print(f"  {len(newest)} dialogues; {matching} of {len(truth)} simulated ones match the ground truth exactly")
print("  by status:", dict(collections.Counter(d["status"] for d in newest.values())))
sample = next(d for d in newest.values() if d["status"] == "TRANSFERRED")
print("  a transferred leg:", json.dumps({k: sample[k] for k in ("dialogueId", "status", "startTime", "answerTime", "endTime", "duration", "endReason", "participants")}))
print("    its events:", ", ".join(f'{e["eventType"]}@{e["timestamp"][11:23]}' for e in sample["events"]))
for line in open(sys.argv[3]):
    req = json.loads(line)
    for r in req.get("resourceMetrics", []):
        for s in r["scopeMetrics"]:
            for m in s["metrics"]:
                if m["name"] == "voice.calls.answer_rate":
                    rates = {next(a["value"]["stringValue"] for a in p["attributes"] if a["key"] == "voice.organization.id"): round(p["asDouble"], 2) for p in m["gauge"]["dataPoints"] if "asDouble" in p}  # a point with no value ends its series
                    print("  call metrics, answer rate by organization:", dict(sorted(rates.items())[:5]), "...")
PY
echo
echo "==> Collector log: $work/lumina.log"
tail -n 4 "$work/lumina.log"
