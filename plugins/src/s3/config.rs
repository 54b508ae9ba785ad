//! Settings of the `s3` exporter.

use lumina_sdk::config::{ByteSize, ConfigError, ConfigErrors, ConfigPath, Duration, Validate};
use serde::Deserialize;

use crate::aws::AwsSettings;

/// How records are written into an object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum S3Encoding {
    /// One OTLP/JSON `Export*ServiceRequest` per line (newline-delimited JSON).
    #[default]
    OtlpJson,
    /// One voice JSON document per line: the native event JSON of a voice event, the
    /// Dialogue JSON of a dialogue record (logs only).
    VoiceJson,
    /// OTLP protobuf: the object is one `Export*ServiceRequest` (requests concatenate).
    OtlpProto,
}

impl S3Encoding {
    /// The file extension, before any compression suffix.
    pub fn extension(self) -> &'static str {
        match self {
            S3Encoding::OtlpJson | S3Encoding::VoiceJson => "jsonl",
            S3Encoding::OtlpProto => "binpb",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            S3Encoding::OtlpJson | S3Encoding::VoiceJson => "application/x-ndjson",
            S3Encoding::OtlpProto => "application/x-protobuf",
        }
    }
}

/// Compression of an object's bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum S3Compression {
    /// gzip (default): the key ends in `.gz`, which Athena reads as such.
    #[default]
    Gzip,
    /// The bytes as encoded.
    None,
}

/// When an open object is closed and uploaded.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Rollover {
    /// Close an object once its data (before compression) reaches this. Default 64MiB.
    pub max_bytes: ByteSize,
    /// Close an object this long after its first data. Default 1s. Every send waits for the
    /// object holding its data to be uploaded, so keep the exporter's `timeout` above it.
    pub max_age: Duration,
}

impl Default for Rollover {
    fn default() -> Self {
        Self {
            max_bytes: ByteSize::mib(64),
            max_age: Duration(std::time::Duration::from_secs(1)),
        }
    }
}

/// Multipart uploads of large objects.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Multipart {
    /// Objects of at least this many bytes (as uploaded) go up in parts. Default 16MiB.
    pub threshold: ByteSize,
    /// The size of each part but the last. S3 needs at least 5MiB. Default 8MiB.
    pub part_size: ByteSize,
}

impl Default for Multipart {
    fn default() -> Self {
        Self {
            threshold: ByteSize::mib(16),
            part_size: ByteSize::mib(8),
        }
    }
}

/// The smallest part S3 accepts (every part but the last).
pub(super) const MIN_PART_BYTES: u64 = 5 * 1024 * 1024;

/// The default object key template.
pub const DEFAULT_KEY: &str = "{prefix}/year={YYYY}/month={MM}/day={DD}/hour={HH}/{uuid}.{ext}";

/// The placeholders a key template may use.
pub const PLACEHOLDERS: [&str; 9] = [
    "prefix", "signal", "YYYY", "MM", "DD", "HH", "mm", "uuid", "ext",
];

/// Settings of the `s3` exporter.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    /// The bucket.
    pub bucket: String,
    /// What `{prefix}` stands for in `key`. Default empty.
    pub prefix: String,
    /// The object key template (see [`PLACEHOLDERS`]); the date and time are those of the
    /// records' time, in UTC. Default [`DEFAULT_KEY`].
    pub key: String,
    /// `otlp_json` (default), `voice_json` or `otlp_proto`.
    pub encoding: S3Encoding,
    /// `gzip` (default) or `none`.
    pub compression: S3Compression,
    /// When objects close.
    pub rollover: Rollover,
    /// Multipart uploads.
    pub multipart: Multipart,
    /// The AWS region.
    pub region: Option<String>,
    /// An endpoint URL instead of the region's.
    pub endpoint: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), as local stand-ins and some
    /// S3-compatible stores need. Default false (virtual-hosted style).
    pub force_path_style: bool,
}

impl Default for S3Config {
    fn default() -> Self {
        Self {
            bucket: String::new(),
            prefix: String::new(),
            key: DEFAULT_KEY.to_owned(),
            encoding: S3Encoding::default(),
            compression: S3Compression::default(),
            rollover: Rollover::default(),
            multipart: Multipart::default(),
            region: None,
            endpoint: None,
            force_path_style: false,
        }
    }
}

impl S3Config {
    pub(crate) fn aws(&self) -> AwsSettings {
        AwsSettings {
            region: self.region.clone(),
            endpoint: self.endpoint.clone(),
        }
    }

    /// The object's content type.
    pub(crate) fn content_type(&self) -> &'static str {
        match self.compression {
            S3Compression::Gzip => "application/gzip",
            S3Compression::None => self.encoding.content_type(),
        }
    }

    /// The extension `{ext}` stands for.
    pub(crate) fn extension(&self) -> String {
        match self.compression {
            S3Compression::Gzip => format!("{}.gz", self.encoding.extension()),
            S3Compression::None => self.encoding.extension().to_owned(),
        }
    }
}

/// The placeholders of a template, in order, or the first problem with it.
pub(crate) fn placeholders(template: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return Err("has a `}` with no `{` before it".to_owned());
        }
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err("has a `{` that is never closed".to_owned());
        };
        let name = &after[..close];
        if !PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "has an unknown placeholder `{{{name}}}`; known: {}",
                PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(", ")
            ));
        }
        out.push(name);
        rest = &after[close + 1..];
    }
    Ok(out)
}

impl Validate for S3Config {
    fn validate(&self) -> Result<(), ConfigErrors> {
        let mut errors = ConfigErrors::new();
        if self.bucket.is_empty() {
            errors.push(ConfigError::new(
                ConfigPath::parse("bucket"),
                "must name a bucket",
            ));
        }
        match placeholders(&self.key) {
            Err(e) => errors.push(ConfigError::new(ConfigPath::parse("key"), e)),
            Ok(names) if !names.contains(&"uuid") => errors.push(ConfigError::new(
                ConfigPath::parse("key"),
                "must contain `{uuid}`, or objects of one hour would overwrite each other",
            )),
            Ok(_) => {}
        }
        let r = ConfigPath::parse("rollover");
        if self.rollover.max_bytes.bytes() == 0 {
            errors.push(ConfigError::new(r.key("max_bytes"), "must be more than 0"));
        }
        if self.rollover.max_age.0.is_zero() {
            errors.push(ConfigError::new(r.key("max_age"), "must be more than 0"));
        }
        let m = ConfigPath::parse("multipart");
        if self.multipart.part_size.bytes() < MIN_PART_BYTES {
            errors.push(ConfigError::new(
                m.key("part_size"),
                "must be at least 5MiB, the smallest part S3 accepts",
            ));
        }
        if self.multipart.threshold.bytes() < self.multipart.part_size.bytes() {
            errors.push(ConfigError::new(
                m.key("threshold"),
                "must be at least `part_size`",
            ));
        }
        self.aws().check(&mut errors);
        errors.into_result(())
    }
}
