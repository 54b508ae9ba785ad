//! Settings of the `appsync` exporter.

use std::collections::BTreeMap;

use lumina_sdk::config::{ConfigError, ConfigErrors, ConfigPath, Duration, Validate};
use lumina_sdk::voice::Region;
use serde::Deserialize;

use crate::tenants::Tenants;

use lumina_net::tls::TlsClientConfig;

/// One mutation.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MutationConfig {
    /// Publish these records (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The mutation's field name.
    pub mutation: String,
    /// The GraphQL input type of its `input` argument.
    pub input_type: String,
    /// The fields selected from its result.
    pub selection: String,
}

fn yes() -> bool {
    true
}

/// How requests authenticate (exactly one).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AppSyncAuth {
    /// An API key (`x-api-key`).
    pub api_key: Option<String>,
    /// IAM: SigV4 with the standard credential chain.
    pub iam: Option<IamAuth>,
    /// A Lambda-authorizer token (`Authorization`).
    pub lambda_token: Option<String>,
}

/// IAM authentication; it has no settings of its own.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IamAuth {}

/// One regional API.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegionalEndpoint {
    /// The region's GraphQL endpoint.
    pub url: String,
    /// How requests to it authenticate.
    pub auth: AppSyncAuth,
}

/// Settings of the `appsync` exporter.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AppSyncConfig {
    /// The GraphQL endpoint (one API for every tenant), or leave it out and give `regions`.
    pub url: String,
    /// Authentication (with `url`).
    pub auth: AppSyncAuth,
    /// The AWS region (for `iam` with `url`).
    pub region: Option<String>,
    /// One API per region: region → endpoint and auth. Each record goes to its tenant's home
    /// region, from `tenants`.
    pub regions: BTreeMap<String, RegionalEndpoint>,
    /// Tenant → home region (with `regions`): the same setting, and file, as
    /// `region_router`'s.
    pub tenants: Tenants,
    /// How often a tenants file is checked for changes. Default 5s.
    pub reload_interval: Duration,
    /// The region of tenants not in the table. Without it their records are refused.
    pub default_region: Option<Region>,
    /// The dialogue mutation.
    pub dialogues: MutationConfig,
    /// The event mutation.
    pub events: MutationConfig,
    /// Mutations in flight at once. Default 8.
    pub max_concurrency: usize,
    /// TLS settings.
    pub tls: TlsClientConfig,
}

impl Default for AppSyncConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            auth: AppSyncAuth::default(),
            region: None,
            regions: BTreeMap::new(),
            tenants: Tenants::default(),
            reload_interval: Duration::from_secs(5),
            default_region: None,
            dialogues: MutationConfig {
                enabled: true,
                mutation: "handleDialogueUpdate".into(),
                input_type: "DialogueInput".into(),
                selection: DIALOGUE_SELECTION.into(),
            },
            events: MutationConfig {
                enabled: true,
                mutation: "handleEvent".into(),
                input_type: "EventInput".into(),
                selection: EVENT_SELECTION.into(),
            },
            max_concurrency: 8,
            tls: TlsClientConfig::default(),
        }
    }
}

/// The Event fields a mutation selects: subscribers receive only what the mutation selected.
pub const EVENT_SELECTION: &str =
    "eventId dialogueId eventType timestamp data source organizationId";

/// The Dialogue fields a mutation selects.
pub const DIALOGUE_SELECTION: &str = "dialogueId callGuid legGuid callerNumber calledNumber \
startTime endTime duration status direction organizationId accountId createdAt updatedAt \
answerTime endReason participants regionId territory revision \
events { eventId dialogueId eventType timestamp data source organizationId }";

/// Checks that exactly one credential is given.
fn check_auth(a: &AppSyncAuth, at: ConfigPath, errors: &mut ConfigErrors) {
    let n = [
        a.api_key.is_some(),
        a.iam.is_some(),
        a.lambda_token.is_some(),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    if n != 1 {
        errors.push(ConfigError::new(
            at,
            "give exactly one of `api_key`, `iam` and `lambda_token`",
        ));
    }
}

fn check_url(url: &str, at: ConfigPath, errors: &mut ConfigErrors) {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        errors.push(ConfigError::new(
            at,
            "an http:// or https:// URL is required",
        ));
    }
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Validate for AppSyncConfig {
    fn validate(&self) -> Result<(), ConfigErrors> {
        let mut errors = ConfigErrors::new();
        if self.regions.is_empty() {
            check_url(&self.url, ConfigPath::parse("url"), &mut errors);
            check_auth(&self.auth, ConfigPath::parse("auth"), &mut errors);
            if self.default_region.is_some() {
                errors.push(ConfigError::new(
                    ConfigPath::parse("default_region"),
                    "is only used with `regions`",
                ));
            }
        } else {
            if !self.url.is_empty() {
                errors.push(ConfigError::new(
                    ConfigPath::parse("url"),
                    "give either `url` (one API) or `regions` (one API per region), not both",
                ));
            }
            for (k, e) in &self.regions {
                let at = ConfigPath::parse("regions").key(k.clone());
                if Region::parse(k).is_none() {
                    errors.push(ConfigError::new(
                        at.clone(),
                        format!(
                            "unknown region `{k}`; use an id 1-6, a short name or an AWS region name"
                        ),
                    ));
                }
                check_url(&e.url, at.key("url"), &mut errors);
                check_auth(&e.auth, at.key("auth"), &mut errors);
            }
            if let Some(r) = self.default_region
                && !self.regions.keys().any(|k| Region::parse(k) == Some(r))
            {
                errors.push(ConfigError::new(
                    ConfigPath::parse("default_region"),
                    format!("`{}` is not in `regions`", r.name()),
                ));
            }
            if matches!(&self.tenants, Tenants::Inline(m) if m.is_empty())
                && self.default_region.is_none()
            {
                errors.push(ConfigError::new(
                    ConfigPath::parse("tenants"),
                    "is required with `regions`: the tenant table (inline or `file:<path>`, as `region_router` takes it), or a `default_region`",
                ));
            }
            if let Err(e) = self.tenants.check() {
                errors.push(ConfigError::new(ConfigPath::parse("tenants"), e));
            }
        }
        if matches!(self.tenants, Tenants::File(_)) && self.reload_interval.is_zero() {
            errors.push(ConfigError::new(
                ConfigPath::parse("reload_interval"),
                "must be more than 0",
            ));
        }
        for (key, m) in [("dialogues", &self.dialogues), ("events", &self.events)] {
            let p = ConfigPath::parse(key);
            for (k, v) in [("mutation", &m.mutation), ("input_type", &m.input_type)] {
                if !is_name(v) {
                    errors.push(ConfigError::new(
                        p.key(k),
                        format!("`{v}` is not a GraphQL name"),
                    ));
                }
            }
            if m.selection.trim().is_empty() {
                errors.push(ConfigError::new(
                    p.key("selection"),
                    "select at least one field",
                ));
            }
        }
        if self.max_concurrency == 0 {
            errors.push(ConfigError::new(
                ConfigPath::parse("max_concurrency"),
                "must be at least 1",
            ));
        }
        errors.into_result(())
    }
}
