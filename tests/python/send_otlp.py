"""Sends logs, spans and metrics to an OTLP endpoint with the official OpenTelemetry Python SDK,
then prints (as JSON on stdout) exactly what it sent, so a test can compare it with what came
out of the collector.

Usage: send_otlp.py --protocol grpc|http --endpoint HOST:PORT --run RUN_ID --count N
         [--ca CA.pem [--cert CLIENT.pem --key CLIENT-KEY.pem]] [--token BEARER]
With --ca it speaks TLS (and mutual TLS with --cert/--key); --token sends it as a bearer token.
"""

import argparse
import json
import sys

from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import Counter, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


# Delta temporality: each point is exported once, so "exactly what was sent" is well defined
# (cumulative sums are legitimately exported again on every collection).
DELTA = {Counter: AggregationTemporality.DELTA}


def exporters(protocol, endpoint, ca=None, cert=None, key=None, token=None):
    headers = {"authorization": f"Bearer {token}"} if token else None
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        if ca:
            import grpc

            read = lambda p: open(p, "rb").read() if p else None
            creds = grpc.ssl_channel_credentials(read(ca), read(key), read(cert))
            kw = {"endpoint": f"https://{endpoint}", "insecure": False, "credentials": creds}
        else:
            kw = {"endpoint": f"http://{endpoint}", "insecure": True}
        if headers:
            kw["headers"] = headers
        return OTLPLogExporter(**kw), OTLPSpanExporter(**kw), OTLPMetricExporter(preferred_temporality=DELTA, **kw)
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    kw = {}
    if ca:
        kw["certificate_file"] = ca
        if cert:
            kw["client_certificate_file"] = cert
            kw["client_key_file"] = key
    if headers:
        kw["headers"] = headers
    # The HTTP exporters need the per-signal path when given an explicit endpoint.
    base = f"{'https' if ca else 'http'}://{endpoint}"
    return (
        OTLPLogExporter(endpoint=f"{base}/v1/logs", **kw),
        OTLPSpanExporter(endpoint=f"{base}/v1/traces", **kw),
        OTLPMetricExporter(endpoint=f"{base}/v1/metrics", preferred_temporality=DELTA, **kw),
    )


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--protocol", choices=["grpc", "http"], required=True)
    p.add_argument("--endpoint", required=True)
    p.add_argument("--run", required=True)
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--ca")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--token")
    a = p.parse_args()

    resource = Resource.create({"service.name": "python-sender", "lumina.test.run": a.run})
    log_exp, span_exp, metric_exp = exporters(a.protocol, a.endpoint, a.ca, a.cert, a.key, a.token)

    sent = {"logs": [], "spans": [], "metrics": []}

    logs = LoggerProvider(resource=resource)
    logs.add_log_record_processor(BatchLogRecordProcessor(log_exp))
    logger = logs.get_logger("lumina.e2e")
    for i in range(a.count):
        attrs = {"run": a.run, "seq": i, "protocol": a.protocol, "ratio": i / 4, "ok": i % 2 == 0}
        logger.emit(
            body=f"call event {i}",
            severity_number=SeverityNumber.INFO,
            severity_text="INFO",
            attributes=attrs,
        )
        sent["logs"].append({"body": f"call event {i}", "attributes": attrs})

    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(span_exp))
    tracer = tracer_provider.get_tracer("lumina.e2e")
    for i in range(a.count):
        with tracer.start_as_current_span(f"leg {i}", attributes={"run": a.run, "seq": i}) as span:
            ctx = span.get_span_context()
            sent["spans"].append(
                {"name": f"leg {i}", "trace_id": f"{ctx.trace_id:032x}", "span_id": f"{ctx.span_id:016x}", "seq": i}
            )

    reader = PeriodicExportingMetricReader(metric_exp, export_interval_millis=3_600_000)
    meters = MeterProvider(resource=resource, metric_readers=[reader])
    counter = meters.get_meter("lumina.e2e").create_counter("lumina.e2e.calls", unit="1")
    for i in range(a.count):
        counter.add(i + 1, {"run": a.run, "seq": i})
        sent["metrics"].append({"name": "lumina.e2e.calls", "seq": i, "value": i + 1})

    ok = logs.force_flush() and tracer_provider.force_flush() and meters.force_flush()
    logs.shutdown()
    tracer_provider.shutdown()
    meters.shutdown()
    if not ok:
        print("flushing to the collector failed", file=sys.stderr)
        sys.exit(1)
    json.dump(sent, sys.stdout)


if __name__ == "__main__":
    main()
