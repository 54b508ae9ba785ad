//! The voice domain: the `gp` and `rt` receivers, the `dialogue_assembly` processor and the
//! `voice_metrics` and `region_router` connectors. The conventions they follow are in
//! `docs/semantic-conventions.md`; the typed views in `lumina_sdk::voice`.

pub mod assembly;
pub mod fold;
pub mod metrics;
pub mod receiver;
pub mod router;
