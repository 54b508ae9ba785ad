"""A Lumina processor plugin written in Python: keeps one batch in N and drops the others,
except batches holding a voice event of a type it must always keep; it counts the records it
saw and the batches it sampled out.

It reads records without decoding the batch: it asks the host for the index of the batch's
attributes (`attribute-index`, `lumina:plugin@0.2.0`) and reads each record's
`voice.event.type` from the bytes at the offsets the index gives. It is built into a
WebAssembly component from the same WIT package as the Rust processors (`sdk/wit/v0.2.0`),
with componentize-py:

    componentize-py -d ../../sdk/wit/v0.2.0 -w processor-plugin componentize app -o py_sampler.wasm

Config (JSON, optional): {"keep_one_in": 10, "always_keep": ["CALL_ENDED"]}. Defaults 2 and
none.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import processor
from wit_world.imports import host, types

KNOWN = {"keep_one_in", "always_keep"}

# An attribute's six numbers in the index, and the owner kind of a record (an item).
ENTRY = 6
ITEM = 2
EVENT_TYPE = b"voice.event.type"

# One component instance runs one plugin instance, so module state is per instance.
state = {"keep_one_in": 2, "always_keep": set(), "seen": 0}


class Processor(exports.Processor):
    def describe(self) -> types.Metadata:
        return types.Metadata(
            name="py-sampler",
            version="1.0.0",
            signals=[types.Signal.LOGS, types.Signal.TRACES, types.Signal.METRICS],
            attribute_index=True,
        )

    def init(self, config: str) -> None:
        try:
            cfg = json.loads(config) if config.strip() else {}
        except ValueError as e:
            raise Err([types.ConfigError(path="", message=f"the config is not JSON: {e}")])
        if cfg is None:
            cfg = {}
        problems = [types.ConfigError(path=k, message=f"unknown key `{k}` (valid keys: `always_keep`, `keep_one_in`)") for k in sorted(set(cfg) - KNOWN)]
        every = cfg.get("keep_one_in", 2)
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            problems.append(types.ConfigError(path="keep_one_in", message=f"must be a whole number of at least 1, got {every!r}"))
        keep = cfg.get("always_keep", [])
        if not isinstance(keep, list) or not all(isinstance(t, str) for t in keep):
            problems.append(types.ConfigError(path="always_keep", message=f"must be a list of event types, got {keep!r}"))
        if problems:
            raise Err(problems)
        state["keep_one_in"] = every
        state["always_keep"] = set(keep)
        state["seen"] = 0

    def process(self, signal: types.Signal, batch: bytes, index: list[int]) -> processor.Outcome:
        records, event_types = read(batch, index)
        host.counter_add("records_seen", len(records), [])
        state["seen"] += 1
        if (state["seen"] - 1) % state["keep_one_in"] == 0 or event_types & state["always_keep"]:
            return processor.Outcome_Unchanged()
        host.counter_add("sampled_out_batches", 1, [])
        return processor.Outcome_Dropped()


def read(batch: bytes, index: list[int]) -> tuple[set[int], set[str]]:
    """The records (item ordinals) that have attributes, and the event types among them."""
    records: set[int] = set()
    event_types: set[str] = set()
    for i in range(0, len(index), ENTRY):
        owner, key_at, key_len, kind, value_at, value_len = index[i : i + ENTRY]
        if owner >> 30 != ITEM:
            continue
        records.add(owner & 0x3FFFFFFF)
        # Kind 1: a string value, its UTF-8 bytes at value_at.
        if kind == 1 and batch[key_at : key_at + key_len] == EVENT_TYPE:
            event_types.add(batch[value_at : value_at + value_len].decode())
    return records, event_types
