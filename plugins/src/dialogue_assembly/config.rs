//! Settings of the `dialogue_assembly` processor.

use std::path::PathBuf;

use lumina_sdk::config::{ConfigError, ConfigErrors, ConfigPath, Duration, Validate};
use lumina_sdk::voice::{DialogueRecordKind, DialogueStatus};
use serde::Deserialize;

/// Settings of `dialogue_assembly`.
///
/// ```yaml
/// processors:
///   dialogue_assembly:
///     storage: /var/lib/lumina/dialogues   # or { directory: ... }, or { dynamodb: {...} }
///     idle_timeout: 2h
///     idle_status: FAILED
///     grace_period: 15m
///     emit: [update, end]
/// ```
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AssemblyConfig {
    /// Where state is kept.
    pub storage: StorageConfig,
    /// A dialogue with no event for this long is closed with `idle_status`. Default 2h.
    pub idle_timeout: Duration,
    /// The status a dialogue closed by the idle timeout gets. Default `FAILED`.
    pub idle_status: DialogueStatus,
    /// How long a finished dialogue is kept (for late events) before it is evicted. Default 15m.
    pub grace_period: Duration,
    /// How often idle timeouts and evictions are checked. Default 1s.
    pub check_interval: Duration,
    /// How long an evicted dialogue's last revision is remembered, so that late events which
    /// start it again continue its revisions (and OpenSearch, which keeps the highest
    /// revision, takes the update). Events later than `grace_period` plus this start a new
    /// record at revision 1. Default 7d.
    pub remember_evicted: Duration,
    /// Which dialogue records go downstream: `update` (one at every change) and `end` (when a
    /// dialogue finishes, again at a late change after it). Default both; `[end]` gives one
    /// record per finished dialogue, what an end-of-dialogue queue takes.
    pub emit: Vec<Emit>,
}

/// A kind of dialogue record `dialogue_assembly` emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Emit {
    /// `lumina.dialogue.update`.
    Update,
    /// `lumina.dialogue.end`.
    End,
}

impl AssemblyConfig {
    /// The kinds of record a dialogue gets at a change: an update, and an end once it is
    /// `ended`, each if emitted.
    pub(crate) fn kinds(&self, ended: bool) -> &'static [DialogueRecordKind] {
        const BOTH: &[DialogueRecordKind] = &[DialogueRecordKind::Update, DialogueRecordKind::End];
        let update = self.emit.contains(&Emit::Update);
        let end = ended && self.emit.contains(&Emit::End);
        match (update, end) {
            (true, true) => BOTH,
            (true, false) => &BOTH[..1],
            (false, true) => &BOTH[1..],
            (false, false) => &[],
        }
    }
}

/// Where `dialogue_assembly` keeps its state: `{ directory: DIR }`, `{ dynamodb: {...} }`, or
/// just `DIR` (the same as `{ directory: DIR }`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default, remote = "Self")]
pub struct StorageConfig {
    /// A directory; one store file per pipeline is created in it. Default
    /// `lumina-data/dialogue_assembly` (relative to the working directory).
    pub directory: PathBuf,
    /// The DynamoDB dialogue table instead of the local store: for collectors that share a
    /// stream's shards, so a dialogue's state follows its shard.
    pub dynamodb: Option<DynamoStorage>,
}

impl schemars::JsonSchema for StorageConfig {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "DialogueStorage".into()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let dynamodb = g.subschema_for::<DynamoStorage>();
        schemars::json_schema!({
            "description": "Where dialogue state is kept: a directory (one store file per pipeline), or the DynamoDB dialogue table.",
            "anyOf": [
                { "type": "string" },
                {
                    "type": "object",
                    "additionalProperties": false,
                    "properties": {
                        "directory": { "type": "string" },
                        "dynamodb": dynamodb
                    }
                }
            ]
        })
    }
}

impl<'de> Deserialize<'de> for StorageConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = StorageConfig;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a directory, or a map with `directory` or `dynamodb`")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<StorageConfig, E> {
                Ok(StorageConfig {
                    directory: PathBuf::from(s),
                    dynamodb: None,
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                m: A,
            ) -> Result<StorageConfig, A::Error> {
                StorageConfig::deserialize(serde::de::value::MapAccessDeserializer::new(m))
            }
        }
        d.deserialize_any(V)
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            directory: PathBuf::from("lumina-data/dialogue_assembly"),
            dynamodb: None,
        }
    }
}

/// The DynamoDB dialogue table.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DynamoStorage {
    /// The table (created with its indexes if absent, on demand).
    pub table: String,
    /// The AWS region. Default: from the environment / profile.
    pub region: Option<String>,
    /// An endpoint URL instead of the region's.
    pub endpoint: Option<String>,
}

impl Default for AssemblyConfig {
    fn default() -> Self {
        Self {
            storage: StorageConfig::default(),
            idle_timeout: Duration::from_secs(2 * 3600),
            idle_status: DialogueStatus::Failed,
            grace_period: Duration::from_secs(15 * 60),
            check_interval: Duration::from_secs(1),
            remember_evicted: Duration::from_secs(7 * 24 * 3600),
            emit: vec![Emit::Update, Emit::End],
        }
    }
}

impl Validate for AssemblyConfig {
    fn validate(&self) -> Result<(), ConfigErrors> {
        let mut errors = ConfigErrors::new();
        if self.idle_timeout.is_zero() {
            errors.push(ConfigError::new(
                ConfigPath::parse("idle_timeout"),
                "must be more than 0",
            ));
        }
        if self.idle_status == DialogueStatus::Active {
            errors.push(
                ConfigError::new(
                    ConfigPath::parse("idle_status"),
                    "must be a final status, not `ACTIVE`",
                )
                .with_hint("use `FAILED`, `COMPLETED` or `TRANSFERRED`"),
            );
        }
        if self.check_interval.is_zero() {
            errors.push(ConfigError::new(
                ConfigPath::parse("check_interval"),
                "must be more than 0",
            ));
        }
        if let Some(d) = &self.storage.dynamodb {
            if d.table.is_empty() {
                errors.push(ConfigError::new(
                    ConfigPath::parse("storage.dynamodb.table"),
                    "must name the dialogue table",
                ));
            }
            crate::aws::check_endpoint(
                d.endpoint.as_deref(),
                ConfigPath::parse("storage.dynamodb.endpoint"),
                &mut errors,
            );
        }
        if self.emit.is_empty() {
            errors.push(ConfigError::new(
                ConfigPath::parse("emit"),
                "must name at least one of `update` and `end`",
            ));
        }
        if self.storage.directory.as_os_str().is_empty() {
            errors.push(ConfigError::new(
                ConfigPath::parse("storage.directory"),
                "must not be empty",
            ));
        }
        errors.into_result(())
    }
}
