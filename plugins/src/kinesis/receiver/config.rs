//! Settings of the `kinesis` receiver.

use std::path::PathBuf;

use lumina_sdk::config::{ConfigError, ConfigErrors, ConfigPath, Duration, Validate};
use serde::Deserialize;

use crate::aws::AwsSettings;
use crate::kinesis::KinesisEncoding;

/// Where a shard is read from the first time (no checkpoint yet).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InitialPosition {
    /// Records written from now on.
    #[default]
    Latest,
    /// The oldest record the stream keeps.
    TrimHorizon,
    /// Records written at or after `at_timestamp`.
    AtTimestamp,
}

impl InitialPosition {
    /// The lease checkpoint that stands for it.
    pub fn checkpoint(self) -> &'static str {
        match self {
            InitialPosition::Latest => "LATEST",
            InitialPosition::TrimHorizon => "TRIM_HORIZON",
            InitialPosition::AtTimestamp => "AT_TIMESTAMP",
        }
    }
}

/// The DynamoDB lease table and the lease timings.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LeaseConfig {
    /// The table (created if absent). Default `lumina-leases-<stream name>`.
    pub table: Option<String>,
    /// The AWS region of the table. Default: the receiver's.
    pub region: Option<String>,
    /// An endpoint URL instead of the region's. Default: none (not the receiver's).
    pub endpoint: Option<String>,
    /// A lease whose counter has not moved for this long is expired. Default 10s.
    pub failover_time: Duration,
    /// Leases taken from the most loaded worker per interval, at most. Default 1.
    pub max_steal: usize,
    /// This worker's name in the table. Default: host name, process id and a random suffix.
    pub worker_id: Option<String>,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        Self {
            table: None,
            region: None,
            endpoint: None,
            failover_time: Duration::from_secs(10),
            max_steal: 1,
            worker_id: None,
        }
    }
}

/// Settings of the `kinesis` receiver.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct KinesisReceiverConfig {
    /// The stream's name.
    pub stream_name: Option<String>,
    /// The stream's ARN (instead of its name).
    pub stream_arn: Option<String>,
    /// The AWS region.
    pub region: Option<String>,
    /// An endpoint URL instead of the region's.
    pub endpoint: Option<String>,
    /// What the records hold: exactly what the `kinesis` exporter writes with the same setting.
    pub encoding: KinesisEncoding,
    /// Where a shard with no checkpoint starts. Default `latest`.
    pub initial_position: InitialPosition,
    /// With `initial_position: at_timestamp`: the RFC 3339 time to start at.
    pub at_timestamp: Option<String>,
    /// Time between two `GetRecords` calls on a shard (Kinesis allows 5 per second per shard,
    /// shared by every consumer). At least 200ms; default 1s.
    pub poll_interval: Duration,
    /// Records per `GetRecords` call, 1 to 10000. Default 1000.
    pub max_records: i32,
    /// Where records that do not decode are written (JSON lines with the shard, sequence
    /// number, reason and the data in base64). Default
    /// `lumina-data/dead_letters/<component id>.jsonl`.
    pub dead_letter_path: Option<PathBuf>,
    /// The lease table.
    pub leases: LeaseConfig,
}

impl Default for KinesisReceiverConfig {
    fn default() -> Self {
        Self {
            stream_name: None,
            stream_arn: None,
            region: None,
            endpoint: None,
            encoding: KinesisEncoding::default(),
            initial_position: InitialPosition::default(),
            at_timestamp: None,
            poll_interval: Duration::from_secs(1),
            max_records: 1000,
            dead_letter_path: None,
            leases: LeaseConfig::default(),
        }
    }
}

impl KinesisReceiverConfig {
    pub(crate) fn aws(&self) -> AwsSettings {
        AwsSettings {
            region: self.region.clone(),
            endpoint: self.endpoint.clone(),
        }
    }

    pub(crate) fn lease_aws(&self) -> AwsSettings {
        AwsSettings {
            region: self.leases.region.clone().or_else(|| self.region.clone()),
            endpoint: self.leases.endpoint.clone(),
        }
    }

    /// The stream's name: given, or the last part of its ARN.
    pub fn stream(&self) -> String {
        match (&self.stream_name, &self.stream_arn) {
            (Some(n), _) => n.clone(),
            (None, Some(a)) => a.rsplit('/').next().unwrap_or(a).to_owned(),
            (None, None) => String::new(),
        }
    }

    /// The lease table's name.
    pub fn lease_table(&self) -> String {
        self.leases
            .table
            .clone()
            .unwrap_or_else(|| format!("lumina-leases-{}", self.stream()))
    }

    /// `at_timestamp` in Unix seconds.
    pub(crate) fn start_time(&self) -> Option<f64> {
        let t = lumina_sdk::voice::parse_time(self.at_timestamp.as_deref()?).ok()?;
        Some(t as f64 / 1e9)
    }
}

impl Validate for KinesisReceiverConfig {
    fn validate(&self) -> Result<(), ConfigErrors> {
        let mut errors = ConfigErrors::new();
        let err = |path: &str, msg: String| ConfigError::new(ConfigPath::parse(path), msg);
        if self.stream_name.is_some() == self.stream_arn.is_some() {
            errors.push(err(
                "stream_name",
                "give exactly one of `stream_name` and `stream_arn`".into(),
            ));
        }
        if self.poll_interval.get() < std::time::Duration::from_millis(200) {
            errors.push(
                err(
                    "poll_interval",
                    format!("must be at least 200ms, got {:?}", self.poll_interval.get()),
                )
                .with_hint("Kinesis allows 5 GetRecords calls per second per shard"),
            );
        }
        if !(1..=10_000).contains(&self.max_records) {
            errors.push(err(
                "max_records",
                format!("must be from 1 to 10000, got {}", self.max_records),
            ));
        }
        match (self.initial_position, &self.at_timestamp) {
            (InitialPosition::AtTimestamp, None) => errors.push(err(
                "at_timestamp",
                "is needed with `initial_position: at_timestamp`".into(),
            )),
            (InitialPosition::AtTimestamp, Some(t)) => {
                if let Err(e) = lumina_sdk::voice::parse_time(t) {
                    errors.push(err("at_timestamp", format!("`{t}`: {e}")));
                }
            }
            (_, Some(_)) => errors.push(err(
                "at_timestamp",
                "only applies with `initial_position: at_timestamp`".into(),
            )),
            _ => {}
        }
        let l = &self.leases;
        if l.failover_time.get() < std::time::Duration::from_millis(300) {
            errors.push(err(
                "leases.failover_time",
                format!("must be at least 300ms, got {:?}", l.failover_time.get()),
            ));
        }
        if l.max_steal == 0 {
            errors.push(err("leases.max_steal", "must be at least 1".into()));
        }
        if l.table.as_deref() == Some("") {
            errors.push(err("leases.table", "must not be empty".into()));
        }
        if l.worker_id.as_deref() == Some("") {
            errors.push(err("leases.worker_id", "must not be empty".into()));
        }
        self.aws().check(&mut errors);
        crate::aws::check_endpoint(
            l.endpoint.as_deref(),
            ConfigPath::parse("leases.endpoint"),
            &mut errors,
        );
        errors.into_result(())
    }
}
