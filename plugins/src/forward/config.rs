//! Settings: `forward` takes none.

use lumina_sdk::config::Validate;
use serde::Deserialize;

use crate::nop::NopConfig;

/// The `forward` connector's settings (none).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
pub struct ForwardConfig(pub NopConfig);

impl Validate for ForwardConfig {}
