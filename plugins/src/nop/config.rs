//! Settings: `nop` (the receiver and the exporter, and `forward`) take none.

use lumina_sdk::config::Validate;
use serde::Deserialize;

/// The settings of a component that takes none: any key is an error.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NopConfig {}

impl Validate for NopConfig {}
