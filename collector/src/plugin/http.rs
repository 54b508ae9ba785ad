//! HTTP for plugins, inside the sandbox's walls: a request goes only to a `host:port` the
//! operator listed under `allow.http` (or `allow.http_private`), and every redirect is checked
//! against the same list; a host name must resolve to public addresses unless it is listed
//! under `allow.http_private` (so an allowed name cannot be pointed at the instance metadata
//! service or the collector's own network); the response body is capped; and the request is
//! bounded by the call's time budget.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use lumina_sdk::plugin::http::{Request, Response};

use super::config::Allow;

/// Why a plugin's HTTP request got no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HttpFailure {
    Denied(String),
    Timeout,
    Unreachable(String),
    Invalid(String),
}

/// The hosts a plugin may reach, and how.
#[derive(Debug, Clone)]
struct Grants {
    /// `host:port`s it may reach.
    targets: Vec<String>,
    /// Host names that may resolve to private, loopback or link-local addresses.
    private_names: Vec<String>,
}

impl Grants {
    fn new(allow: &Allow) -> Self {
        let mut targets = allow.http.clone();
        targets.extend(allow.http_private.iter().cloned());
        let private_names = allow
            .http_private
            .iter()
            .filter_map(|t| lumina_net::endpoint::split_host_port(t).ok())
            .map(|(h, _)| h.trim_matches(['[', ']']).to_ascii_lowercase())
            .collect();
        Self {
            targets,
            private_names,
        }
    }

    /// `host:port` of `url`, if it is an http(s) URL whose target is listed.
    fn check(&self, url: &reqwest::Url) -> Result<(), HttpFailure> {
        let default_port = match url.scheme() {
            "http" => 80,
            "https" => 443,
            _ => {
                return Err(HttpFailure::Invalid(format!(
                    "`{url}` is not an http:// or https:// URL"
                )));
            }
        };
        let host = url
            .host_str()
            .ok_or_else(|| HttpFailure::Invalid(format!("`{url}` has no host")))?;
        let target = format!("{host}:{}", url.port().unwrap_or(default_port));
        if self.targets.contains(&target) {
            Ok(())
        } else {
            Err(HttpFailure::Denied(format!(
                "{target} is not listed under `allow.http`"
            )))
        }
    }
}

/// Whether `ip` is an address a plugin must not reach by a name that was not granted as
/// private: loopback, private, link-local (the cloud instance metadata service), unspecified,
/// shared, multicast or otherwise not globally routable.
fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
        }
    }
}

/// Resolves names for plugin requests, keeping only public addresses unless the name was
/// granted as private.
struct PublicOnly {
    private_names: Vec<String>,
}

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_ascii_lowercase();
        let private_ok = self.private_names.contains(&host);
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let usable: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| private_ok || !is_internal(a.ip()))
                .collect();
            if usable.is_empty() && !found.is_empty() {
                return Err(format!(
                    "`{host}` resolves only to private, loopback or link-local addresses; list it under `allow.http_private` to allow that"
                )
                .into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(usable.into_iter());
            Ok(addrs)
        })
    }
}

/// The HTTP client of one plugin component.
pub(crate) struct PluginHttp {
    grants: Arc<Grants>,
    client: reqwest::Client,
    timeout: Duration,
    max_response: usize,
}

impl PluginHttp {
    /// A client for the grants in `allow`; requests take at most `timeout` and bodies at most
    /// `max_response` bytes.
    pub(crate) fn new(allow: &Allow, timeout: Duration, max_response: usize) -> Self {
        lumina_net::tls::ensure_crypto_provider();
        let grants = Arc::new(Grants::new(allow));
        let checked = grants.clone();
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 10 {
                return attempt.error("more than 10 redirects");
            }
            match checked.check(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(HttpFailure::Denied(m) | HttpFailure::Invalid(m)) => {
                    let url = attempt.url().to_string();
                    attempt.error(format!("redirected to {url}: {m}"))
                }
                Err(e) => attempt.error(format!("{e:?}")),
            }
        });
        let client = reqwest::Client::builder()
            .redirect(redirects)
            .dns_resolver(Arc::new(PublicOnly {
                private_names: grants.private_names.clone(),
            }))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            grants,
            client,
            timeout,
            max_response,
        }
    }

    /// Sends a plugin's request if its target is allowed, within `budget` (what is left of the
    /// call's time; zero for no budget). Runs on a blocking thread (plugin calls always do),
    /// so it can wait for the response.
    pub(crate) fn send(&self, req: &Request, budget: Duration) -> Result<Response, HttpFailure> {
        let url: reqwest::Url = req
            .url
            .parse()
            .map_err(|e| HttpFailure::Invalid(format!("bad URL `{}`: {e}", req.url)))?;
        self.grants.check(&url)?;
        let timeout = if budget.is_zero() {
            self.timeout
        } else {
            self.timeout.min(budget)
        };
        let handle = tokio::runtime::Handle::try_current().map_err(|_| {
            HttpFailure::Denied(
                "HTTP is not available here (for example while the config is being validated)"
                    .into(),
            )
        })?;
        let method = reqwest::Method::from_bytes(req.method.as_bytes())
            .map_err(|e| HttpFailure::Invalid(format!("bad method `{}`: {e}", req.method)))?;
        let mut rb = self
            .client
            .request(method, url)
            .timeout(timeout)
            .body(req.body.clone());
        for (k, v) in &req.headers {
            rb = rb.header(k.as_str(), v.as_str());
        }
        let max = self.max_response;
        handle.block_on(async move {
            let mut resp = rb.send().await.map_err(classify)?;
            let status = resp.status().as_u16();
            let headers = resp
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(classify)? {
                if body.len() + chunk.len() > max {
                    return Err(HttpFailure::Invalid(format!(
                        "the response body is larger than `limits.http_response_size` ({max} bytes)"
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Response {
                status,
                headers,
                body,
            })
        })
    }
}

fn classify(e: reqwest::Error) -> HttpFailure {
    if e.is_timeout() {
        HttpFailure::Timeout
    } else if e.is_redirect() {
        HttpFailure::Denied(lumina_sdk::util::error_chain(&e))
    } else if e.is_builder() || e.is_request() && !e.is_connect() {
        HttpFailure::Invalid(lumina_sdk::util::error_chain(&e))
    } else {
        HttpFailure::Unreachable(lumina_sdk::util::error_chain(&e))
    }
}

#[cfg(test)]
mod tests;
