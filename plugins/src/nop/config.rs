//! Settings: `nop` (and `forward`) take none.

use lumina_sdk::config::Validate;
use serde::Deserialize;

/// The settings of a component that takes none: any key is an error.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NopConfig {}

impl Validate for NopConfig {}

/// The `nop` receiver's settings (none).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct NopReceiverConfig(pub NopConfig);

impl Validate for NopReceiverConfig {}

/// The `nop` exporter's settings (none).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct NopExporterConfig(pub NopConfig);

impl Validate for NopExporterConfig {}
