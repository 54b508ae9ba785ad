//! Host-side bindings of the plugin WIT worlds: `sdk/wit/v0.1.0` (every kind) and
//! `sdk/wit/v0.2.0` (processors that read batches through an attribute index). The exporter
//! and receiver worlds reuse the 0.1.0 processor world's `types` and `host` interfaces.

pub(crate) mod processor {
    wasmtime::component::bindgen!({
        path: "../sdk/wit/v0.1.0",
        world: "lumina:plugin/processor-plugin",
    });
}

pub(crate) mod exporter {
    wasmtime::component::bindgen!({
        path: "../sdk/wit/v0.1.0",
        world: "lumina:plugin/exporter-plugin",
        with: {
            "lumina:plugin/types": super::processor::lumina::plugin::types,
            "lumina:plugin/host": super::processor::lumina::plugin::host,
        },
    });
}

pub(crate) mod receiver {
    wasmtime::component::bindgen!({
        path: "../sdk/wit/v0.1.0",
        world: "lumina:plugin/receiver-plugin",
        with: {
            "lumina:plugin/types": super::processor::lumina::plugin::types,
            "lumina:plugin/host": super::processor::lumina::plugin::host,
        },
    });
}

pub(crate) mod processor_v2 {
    wasmtime::component::bindgen!({
        path: "../sdk/wit/v0.2.0",
        world: "lumina:plugin/processor-plugin",
    });
}
