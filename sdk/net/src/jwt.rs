//! JWT bearer tokens checked against a JSON Web Key Set, for organisation-level access on the
//! receivers: a valid token names the organisation its holder may send for.
//!
//! ```yaml
//! auth:
//!   jwt:
//!     jwks_file: /etc/lumina/jwks.json     # or jwks_url: https://idp.example.com/.well-known/jwks.json
//!     issuer: https://idp.example.com/
//!     audience: lumina                     # or a list
//!     organization_claim: organizationId   # the claim that names the organisation (default)
//!     leeway: 60s                          # clock skew allowed on exp/nbf (default)
//!     reload_interval: 10s                 # how often the file (or URL) is checked (default)
//! ```
//!
//! A token must be signed with a key of the set (by its `kid`; a token without `kid` is tried
//! against the set's only key), with an asymmetric algorithm (RS*, PS*, ES*, EdDSA: a token
//! signed with a shared secret, or not signed, is refused) that the key allows, and carry
//! `exp`, the configured `iss` and one of the configured audiences. The key set is read at
//! start (a receiver does not start without one) and again when the file changes or every
//! `reload_interval` from the URL; a set that no longer reads is logged and the previous one
//! kept.
//!
//! Why `jsonwebtoken` 9: the most used JWT crate of the ecosystem, JWK support built in, and its
//! 9.x line verifies with `ring`, which the TLS stack already builds.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock, Weak};
use std::time::SystemTime;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use lumina_sdk::config::{ConfigError, ConfigErrors, ConfigPath, Duration};
use lumina_sdk::telemetry::ComponentTelemetry;
use serde::Deserialize;

/// The `jwt` setting of `auth`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// A JWKS document on disk.
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// A JWKS document served over HTTP(S).
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// The `iss` a token must carry.
    #[serde(default)]
    pub issuer: String,
    /// The audiences a token may carry (one is enough).
    #[serde(default, deserialize_with = "one_or_many")]
    pub audience: Vec<String>,
    /// The claim that names the token's organisation. Default `organizationId`.
    #[serde(default = "default_claim")]
    pub organization_claim: String,
    /// Clock skew allowed on `exp` and `nbf`. Default 60s.
    #[serde(default = "default_leeway")]
    pub leeway: Duration,
    /// How often the key set is checked for changes. Default 10s.
    #[serde(default = "default_reload")]
    pub reload_interval: Duration,
}

fn default_claim() -> String {
    "organizationId".into()
}

fn default_leeway() -> Duration {
    Duration::from_secs(60)
}

fn default_reload() -> Duration {
    Duration::from_secs(10)
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize, schemars::JsonSchema)]
    #[serde(untagged)]
    enum V {
        One(String),
        Many(Vec<String>),
    }
    Ok(match V::deserialize(d)? {
        V::One(s) => vec![s],
        V::Many(v) => v,
    })
}

impl JwtConfig {
    /// Checks the settings.
    pub fn check(&self, errors: &mut ConfigErrors, at: &ConfigPath) {
        match (&self.jwks_file, &self.jwks_url) {
            (Some(_), None) => {}
            (None, Some(u)) if u.starts_with("https://") || u.starts_with("http://") => {}
            (None, Some(_)) => errors.push(ConfigError::new(
                at.key("jwks_url"),
                "an http:// or https:// URL is required",
            )),
            _ => errors.push(ConfigError::new(
                at.clone(),
                "give exactly one of `jwks_file` and `jwks_url`",
            )),
        }
        if self.issuer.trim().is_empty() {
            errors.push(ConfigError::new(
                at.key("issuer"),
                "is required: the `iss` the identity provider puts in its tokens",
            ));
        }
        if self.audience.is_empty() || self.audience.iter().any(|a| a.trim().is_empty()) {
            errors.push(ConfigError::new(
                at.key("audience"),
                "is required: the `aud` (one or a list) tokens for this collector carry",
            ));
        }
        if self.organization_claim.trim().is_empty() {
            errors.push(ConfigError::new(
                at.key("organization_claim"),
                "must name a claim",
            ));
        }
        if self.reload_interval.is_zero() {
            errors.push(ConfigError::new(
                at.key("reload_interval"),
                "must be more than 0",
            ));
        }
    }
}

/// One key of the set: the key, and the algorithm it is for, if the set says.
struct Key {
    key: DecodingKey,
    alg: Option<String>,
}

#[derive(Default)]
struct Keys {
    by_id: HashMap<String, Key>,
    /// Keys without a `kid`.
    unnamed: Vec<Key>,
}

impl Keys {
    fn parse(text: &str) -> Result<Keys, String> {
        let set: JwkSet =
            serde_json::from_str(text).map_err(|e| format!("not a JWKS document: {e}"))?;
        let mut keys = Keys::default();
        for (i, jwk) in set.keys.iter().enumerate() {
            let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("key {i}: {e}"))?;
            let key = Key {
                key,
                alg: jwk.common.key_algorithm.map(|a| format!("{a:?}")),
            };
            match &jwk.common.key_id {
                Some(id) => {
                    keys.by_id.insert(id.clone(), key);
                }
                None => keys.unnamed.push(key),
            }
        }
        if keys.by_id.is_empty() && keys.unnamed.is_empty() {
            return Err("the key set has no keys".into());
        }
        Ok(keys)
    }

    fn len(&self) -> usize {
        self.by_id.len() + self.unnamed.len()
    }
}

/// Checks tokens against the current key set.
pub struct JwtVerifier {
    cfg: JwtConfig,
    keys: RwLock<Keys>,
    /// For `jwks_url`.
    client: Option<reqwest::Client>,
    telemetry: ComponentTelemetry,
    /// Counts reload attempts (read or not).
    reloads: tokio::sync::watch::Sender<u64>,
}

/// Whether `alg` is signed with a private key (not a shared secret, not `none`).
fn asymmetric(alg: Algorithm) -> bool {
    !matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

impl JwtVerifier {
    /// Reads the key set (a receiver does not start without one) and keeps it current.
    pub async fn start(
        cfg: &JwtConfig,
        telemetry: ComponentTelemetry,
    ) -> Result<Arc<JwtVerifier>, String> {
        let v = Arc::new(JwtVerifier {
            cfg: cfg.clone(),
            keys: RwLock::new(Keys::default()),
            client: match &cfg.jwks_url {
                Some(_) => Some(
                    crate::tls::http_client(&crate::tls::TlsClientConfig::default())
                        .map_err(|e| e.to_string())?,
                ),
                None => None,
            },
            telemetry,
            reloads: tokio::sync::watch::channel(0).0,
        });
        let (text, stamp) = v.fetch().await?;
        *v.keys.write().unwrap_or_else(|p| p.into_inner()) =
            Keys::parse(&text).map_err(|e| format!("{}: {e}", v.source()))?;
        tokio::spawn(watch(Arc::downgrade(&v), stamp));
        Ok(v)
    }

    /// Counts up after each attempt to read the key set again (tests wait on it).
    pub fn reloads(&self) -> tokio::sync::watch::Receiver<u64> {
        self.reloads.subscribe()
    }

    fn source(&self) -> String {
        match (&self.cfg.jwks_file, &self.cfg.jwks_url) {
            (Some(p), _) => format!("the key set {}", p.display()),
            (None, Some(u)) => format!("the key set at {u}"),
            (None, None) => "the key set".into(),
        }
    }

    /// The key set's text, and for a file its modification stamp.
    async fn fetch(&self) -> Result<(String, Option<(SystemTime, u64)>), String> {
        if let Some(p) = &self.cfg.jwks_file {
            let text = std::fs::read_to_string(p)
                .map_err(|e| format!("cannot read the key set {}: {e}", p.display()))?;
            return Ok((text, stamp(p)));
        }
        let url = self.cfg.jwks_url.as_deref().unwrap_or_default();
        let Some(client) = &self.client else {
            return Err("no `jwks_file` or `jwks_url`".into());
        };
        let resp = client
            .get(url)
            .timeout(std::time::Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| format!("cannot fetch the key set at {url}: {e}"))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!("the key set at {url} answered {status}"));
        }
        let text = resp
            .text()
            .await
            .map_err(|e| format!("cannot read the key set at {url}: {e}"))?;
        Ok((text, None))
    }

    /// The organisation a valid token is for; why it is refused otherwise.
    pub fn verify(&self, token: &str) -> Result<String, String> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| format!("not a valid JWT: {e}"))?;
        if !asymmetric(header.alg) {
            return Err(format!(
                "tokens signed with {:?} are not accepted; use a key of the key set",
                header.alg
            ));
        }
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        let key = match &header.kid {
            Some(kid) => keys
                .by_id
                .get(kid)
                .ok_or_else(|| format!("the token's key `{kid}` is not in the key set"))?,
            None if keys.len() == 1 => keys
                .by_id
                .values()
                .chain(&keys.unnamed)
                .next()
                .ok_or("the key set has no keys")?,
            None => return Err("the token names no key (`kid`) and the set has several".into()),
        };
        if let Some(alg) = &key.alg
            && *alg != format!("{:?}", header.alg)
        {
            return Err(format!(
                "the token is signed with {:?} but its key is for {alg}",
                header.alg
            ));
        }
        let mut v = Validation::new(header.alg);
        v.leeway = self.cfg.leeway.get().as_secs();
        v.set_issuer(&[&self.cfg.issuer]);
        v.set_audience(&self.cfg.audience);
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key.key, &v)
            .map_err(|e| describe(&e))?;
        let claim = &self.cfg.organization_claim;
        match data.claims.get(claim) {
            Some(serde_json::Value::String(org)) if !org.is_empty() => Ok(org.clone()),
            _ => Err(format!(
                "the token has no `{claim}` claim naming an organisation"
            )),
        }
    }
}

fn describe(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::ExpiredSignature => "the token has expired".into(),
        K::ImmatureSignature => "the token is not valid yet (nbf)".into(),
        K::InvalidSignature => "the token's signature does not verify".into(),
        K::InvalidAudience => "the token is for another audience".into(),
        K::InvalidIssuer => "the token is from another issuer".into(),
        K::MissingRequiredClaim(c) => format!("the token has no `{c}` claim"),
        K::InvalidAlgorithm => "the token's algorithm does not fit its key".into(),
        _ => format!("the token is not valid: {e}"),
    }
}

fn stamp(p: &std::path::Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(p).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// Re-reads the key set while its verifier lives: a file when it changed, a URL every time.
async fn watch(v: Weak<JwtVerifier>, mut seen: Option<(SystemTime, u64)>) {
    let every = match v.upgrade() {
        Some(v) => v.cfg.reload_interval.get(),
        None => return,
    };
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        ticker.tick().await;
        let Some(v) = v.upgrade() else { return };
        if let Some(p) = &v.cfg.jwks_file
            && stamp(p) == seen
        {
            continue;
        }
        let result = v
            .fetch()
            .await
            .and_then(|(text, s)| Ok((Keys::parse(&text)?, s)));
        let outcome = match result {
            Ok((keys, s)) => {
                seen = s;
                let n = keys.len();
                *v.keys.write().unwrap_or_else(|p| p.into_inner()) = keys;
                if v.cfg.jwks_file.is_some() {
                    tracing::info!(component = %v.telemetry.id(), keys = n, "Reloaded {}.", v.source());
                }
                "ok"
            }
            Err(e) => {
                tracing::warn!(component = %v.telemetry.id(), error = %e, "Cannot reload {}; keeping the keys already read.", v.source());
                "error"
            }
        };
        v.telemetry
            .counter(
                "lumina_receiver_jwks_reloads_total",
                &[("outcome", outcome.to_owned())],
            )
            .increment(1);
        v.reloads.send_modify(|n| *n += 1);
    }
}

#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
#[cfg(test)]
mod tests;
