"""A Lumina processor plugin written in Python: keeps one batch in N and drops the others.

It is built into a WebAssembly component from the same WIT package as the Rust plugins
(`sdk/wit/v0.1.0`), with componentize-py:

    componentize-py -d ../../sdk/wit/v0.1.0 -w processor-plugin componentize app -o py_sampler.wasm

Config (JSON, optional): {"keep_one_in": 10}. Default 2.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import processor
from wit_world.imports import host, types

KNOWN = {"keep_one_in"}

# One component instance runs one plugin instance, so module state is per instance.
state = {"keep_one_in": 2, "seen": 0}


class Processor(exports.Processor):
    def describe(self) -> types.Metadata:
        return types.Metadata(
            name="py-sampler",
            version="1.0.0",
            signals=[types.Signal.LOGS, types.Signal.TRACES, types.Signal.METRICS],
        )

    def init(self, config: str) -> None:
        try:
            cfg = json.loads(config) if config.strip() else {}
        except ValueError as e:
            raise Err([types.ConfigError(path="", message=f"the config is not JSON: {e}")])
        if cfg is None:
            cfg = {}
        problems = [types.ConfigError(path=k, message=f"unknown key `{k}` (valid keys: `keep_one_in`)") for k in sorted(set(cfg) - KNOWN)]
        every = cfg.get("keep_one_in", 2)
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            problems.append(types.ConfigError(path="keep_one_in", message=f"must be a whole number of at least 1, got {every!r}"))
        if problems:
            raise Err(problems)
        state["keep_one_in"] = every
        state["seen"] = 0

    def process(self, signal: types.Signal, batch: bytes) -> processor.Outcome:
        state["seen"] += 1
        if (state["seen"] - 1) % state["keep_one_in"] == 0:
            return processor.Outcome_Unchanged()
        host.counter_add("sampled_out_batches", 1, [])
        return processor.Outcome_Dropped()
