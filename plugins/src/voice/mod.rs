//! The voice domain: the `gp` and `rt` receivers, the `dialogue_assembly` processor and the
//! `voice_metrics` connector. The conventions they follow are in
//! `docs/semantic-conventions.md`; the typed views in `lumina_sdk::voice`.

pub mod assembly;
pub mod fold;
pub mod metrics;
pub mod receiver;
