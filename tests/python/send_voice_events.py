"""Sends voice events as OTLP log records with the official OpenTelemetry Python SDK, the way a
voice component instrumented with OpenTelemetry would: one logger provider per component (GP
and RT), each exporting over OTLP/gRPC to its receiver.

Usage: send_voice_events.py --events EVENTS.jsonl --gp HOST:PORT --rt HOST:PORT

EVENTS.jsonl holds `{"source": "GP"|"RT", "event": {native JSON event}}` per line, as
`lumina-callsim --events` writes them. Each event becomes a log record that follows
docs/semantic-conventions.md: `voice.*` attributes, the event time as the record's timestamp,
and the event's data as a map body.
"""

import argparse
import datetime
import json

from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource

ATTRIBUTES = {
    "eventId": "voice.event.id",
    "eventType": "voice.event.type",
    "organizationId": "voice.organization.id",
    "accountId": "voice.account.id",
    "callGuid": "voice.call.guid",
    "legGuid": "voice.leg.guid",
    "dialogueId": "voice.dialogue.id",
    "callerNumber": "voice.caller.number",
    "calledNumber": "voice.called.number",
    "direction": "voice.direction",
    "regionId": "voice.region.id",
    "territory": "voice.territory",
}


def nanos(rfc3339):
    t = datetime.datetime.fromisoformat(rfc3339.replace("Z", "+00:00"))
    # Whole microseconds from datetime, plus any further digits the string carries.
    frac = rfc3339.split(".")[1].rstrip("Z") if "." in rfc3339 else ""
    return int(t.replace(microsecond=0).timestamp()) * 1_000_000_000 + int((frac + "000000000")[:9])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--events", required=True)
    p.add_argument("--gp", required=True)
    p.add_argument("--rt", required=True)
    a = p.parse_args()

    providers = {}
    for source, endpoint in (("GP", a.gp), ("RT", a.rt)):
        provider = LoggerProvider(resource=Resource.create({"service.name": f"voice-{source.lower()}"}))
        provider.add_log_record_processor(
            BatchLogRecordProcessor(OTLPLogExporter(endpoint=f"http://{endpoint}", insecure=True))
        )
        providers[source] = provider
    loggers = {s: p.get_logger("voice.platform") for s, p in providers.items()}

    sent = 0
    with open(a.events) as f:
        for line in f:
            item = json.loads(line)
            event = item["event"]
            attributes = {key: event[field] for field, key in ATTRIBUTES.items() if field in event}
            loggers[item["source"]].emit(
                timestamp=nanos(event["timestamp"]),
                body=event.get("data") or {},
                attributes=attributes,
            )
            sent += 1
    for provider in providers.values():
        provider.force_flush()
        provider.shutdown()
    print(json.dumps({"sent": sent}))


if __name__ == "__main__":
    main()
