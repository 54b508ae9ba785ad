#!/usr/bin/env python3
"""Tier-2 read throughput: simulated calls preloaded into a 4-shard kinesalite stream, then
read by 1 and by 3 `lumina` processes (kinesis receiver -> dialogue_assembly on dynalite ->
nop), each run on fresh tables. Prints a Markdown table: events/s per configuration, and the
ratio of 3 instances to 1. Called by scripts/bench-tier2.sh, which builds what it needs."""

import argparse, json, os, re, socket, subprocess, sys, tempfile, time, urllib.request

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def node_service(services, script, port):
    p = subprocess.Popen(["node", os.path.join(services, script), str(port)], cwd=services,
                         stdout=subprocess.PIPE, text=True)
    for line in p.stdout:
        if line.startswith("ready"):
            return p
    raise SystemExit(f"{script} did not start")

def kinesis(url, target, body):
    # kinesalite checks that a SigV4 header is there, not what it says.
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": f"Kinesis_20131202.{target}",
        "X-Amz-Date": stamp,
        "Authorization": f"AWS4-HMAC-SHA256 Credential=AKID/{stamp[:8]}/eu-west-1/kinesis/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
    })
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read() or b"{}")

def metric(port, name, labels=""):
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    except OSError:
        return 0.0
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and labels in line:
            total += float(line.rsplit(" ", 1)[1])
    return total

def wait_healthy(port, proc, log):
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"lumina exited:\n{open(log).read()}")
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"lumina did not become healthy:\n{open(log).read()}")

def start(lumina, config, env, tmp, name):
    d = os.path.join(tmp, name); os.makedirs(d, exist_ok=True)
    port = free_port()
    cfg = os.path.join(d, "config.yaml")
    open(cfg, "w").write(config.replace("{dir}", d) +
        f"  telemetry:\n    metrics: {{ address: 127.0.0.1:{port} }}\n")
    log = os.path.join(d, "lumina.log")
    p = subprocess.Popen([lumina, "--config", cfg], env=env, cwd=d,
                         stdout=open(log, "w"), stderr=subprocess.STDOUT)
    wait_healthy(port, p, log)
    return p, port

def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

def stop(p):
    p.terminate()
    try:
        p.wait(60)
    except subprocess.TimeoutExpired:
        p.kill()

def main():
    a = argparse.ArgumentParser()
    a.add_argument("--lumina", required=True)
    a.add_argument("--callsim", required=True)
    a.add_argument("--services", required=True)
    a.add_argument("--calls", type=int, default=5000)
    a.add_argument("--runs", type=int, default=3)
    a.add_argument("--out", required=True)
    args = a.parse_args()
    env = dict(os.environ, AWS_ACCESS_KEY_ID="AKIDBENCH", AWS_SECRET_ACCESS_KEY="bench",
               AWS_REGION="eu-west-1", AWS_EC2_METADATA_DISABLED="true")
    tmp = tempfile.mkdtemp(prefix="lumina-tier2-bench-")
    kport, dport = free_port(), free_port()
    procs = [node_service(args.services, "kinesalite.js", kport),
             node_service(args.services, "dynalite.js", dport)]
    kurl, durl = f"http://127.0.0.1:{kport}", f"http://127.0.0.1:{dport}"
    try:
        kinesis(kurl, "CreateStream", {"StreamName": "voice", "ShardCount": 4})
        active_by = time.time() + 60
        while kinesis(kurl, "DescribeStreamSummary", {"StreamName": "voice"})["StreamDescriptionSummary"]["StreamStatus"] != "ACTIVE":
            if time.time() > active_by:
                raise SystemExit("the stream did not become ACTIVE within 60 s")
            time.sleep(0.1)
        grpc = free_port()
        tier1 = f"""receivers:
  gp: {{ protocols: {{ grpc: {{ endpoint: "127.0.0.1:{grpc}" }} }} }}
exporters:
  kinesis: {{ stream_name: voice, region: eu-west-1, endpoint: "{kurl}", sending_queue: {{ enabled: false }} }}
service:
  pipelines:
    logs: {{ receivers: [gp], exporters: [kinesis] }}
"""
        t1, _ = start(args.lumina, tier1, env, tmp, "tier1")
        truth = os.path.join(tmp, "truth.jsonl")
        subprocess.run([args.callsim, "--gp", f"127.0.0.1:{grpc}", "--rt", f"127.0.0.1:{grpc}",
                        "--calls", str(args.calls), "--organizations", "40", "--disorder", "0.2",
                        "--duplicate", "0.05", "--batch", "500", "--truth", truth],
                       check=True, stdout=subprocess.DEVNULL)
        stop(t1)
        events = sum(len(json.loads(l)["events"]) for l in open(truth) if l.strip())
        results, cpu = {}, {}
        for n in (1, 3):
            rates, shares = [], []
            for run in range(args.runs):
                tag = f"n{n}r{run}"
                config = f"""receivers:
  kinesis:
    stream_name: voice
    region: eu-west-1
    endpoint: "{kurl}"
    initial_position: trim_horizon
    poll_interval: 200ms
    max_records: 1000
    leases: {{ table: leases-{tag}, endpoint: "{durl}", failover_time: 3s }}
processors:
  dialogue_assembly:
    storage: {{ dynamodb: {{ table: dialogues-{tag}, endpoint: "{durl}" }} }}
    idle_timeout: 1h
exporters:
  nop: {{}}
service:
  pipelines:
    logs: {{ receivers: [kinesis], processors: [dialogue_assembly], exporters: [nop] }}
"""
                started = [start(args.lumina, config, env, tmp, f"{tag}-{i}") for i in range(n)]
                pids = {"lumina": [p.pid for p, _ in started], "dynalite": [procs[1].pid], "kinesalite": [procs[0].pid]}
                before = {k: sum(cpu_seconds(x) for x in v) for k, v in pids.items()}
                t0 = time.time()
                while True:
                    done = sum(metric(p, "lumina_dialogue_events_total", 'outcome="applied"') for _, p in started)
                    if done >= events:
                        break
                    if time.time() - t0 > 900:
                        raise SystemExit(f"{tag}: {done} of {events} events after 900 s")
                    time.sleep(0.2)
                elapsed = time.time() - t0
                rates.append(events / elapsed)
                shares.append({k: (sum(cpu_seconds(x) for x in v) - before[k]) / elapsed for k, v in pids.items()})
                for p, _ in started:
                    stop(p)
            rates.sort()
            results[n] = rates
            cpu[n] = {k: sorted(s[k] for s in shares)[len(shares) // 2] for k in shares[0]}
            print(f"{n} instance(s): {[round(r) for r in rates]} events/s", file=sys.stderr)
        med = {n: r[len(r) // 2] for n, r in results.items()}
        with open(args.out, "w") as f:
            f.write(f"{args.calls} simulated calls ({events} distinct events, 20% out of order, 5% sent twice) preloaded into a 4-shard kinesalite stream; each run reads them all from `TRIM_HORIZON` on fresh lease and dialogue tables in dynalite, through `dialogue_assembly` on DynamoDB into `nop`. Timed from the moment every instance is healthy until the instances together applied every event.\n\n")
            f.write("| tier-2 instances | events/s | ratio to 1 instance | CPU: Lumina (all instances) | CPU: dynalite | CPU: kinesalite |\n|---|---|---|---|---|---|\n")
            for n, r in results.items():
                c = cpu[n]
                f.write(f"| {n} | {med[n]:,.0f} ({r[0]:,.0f}–{r[-1]:,.0f}) | **{med[n] / med[1]:.2f}×** | {c['lumina']:.0%} | {c['dynalite']:.0%} | {c['kinesalite']:.0%} |\n")
            f.write("\nMedians of the runs, with the lowest and highest in brackets. CPU is in cores (100% = one core busy for the whole run), median of the runs.\n")
    finally:
        for p in procs:
            p.kill()

if __name__ == "__main__":
    main()
