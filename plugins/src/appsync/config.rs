//! Settings of the `appsync` exporter.

use lumina_sdk::config::{ConfigError, ConfigErrors, ConfigPath, Validate};
use serde::Deserialize;

use lumina_net::tls::TlsClientConfig;

/// One mutation.
#[derive(Debug, Clone, Deserialize)]
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
#[derive(Debug, Clone, Default, Deserialize)]
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
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IamAuth {}

/// Settings of the `appsync` exporter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppSyncConfig {
    /// The GraphQL endpoint.
    pub url: String,
    /// Authentication.
    pub auth: AppSyncAuth,
    /// The AWS region (for `iam`).
    pub region: Option<String>,
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
            dialogues: MutationConfig {
                enabled: true,
                mutation: "publishDialogue".into(),
                input_type: "DialogueInput".into(),
                selection: "dialogueId organizationId status revision updatedAt".into(),
            },
            events: MutationConfig {
                enabled: true,
                mutation: "publishEvent".into(),
                input_type: "EventInput".into(),
                selection: "eventId dialogueId eventType timestamp".into(),
            },
            max_concurrency: 8,
            tls: TlsClientConfig::default(),
        }
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
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            errors.push(ConfigError::new(
                ConfigPath::parse("url"),
                "an http:// or https:// URL is required",
            ));
        }
        let a = &self.auth;
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
                ConfigPath::parse("auth"),
                "give exactly one of `api_key`, `iam` and `lambda_token`",
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
