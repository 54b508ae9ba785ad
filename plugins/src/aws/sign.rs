//! AWS Signature Version 4 for the HTTP-speaking AWS exporters (`opensearch` with services
//! `es` and `aoss`, `appsync`), with credentials from the standard chain, cached until shortly
//! before they expire.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign,
};
use aws_sigv4::sign::v4;

use super::AwsSettings;

/// Credentials are fetched again this long before they expire.
const REFRESH_BEFORE: Duration = Duration::from_secs(300);

/// Signs requests for one service in one region.
pub struct Signer {
    provider: SharedCredentialsProvider,
    region: String,
    service: String,
    cached: tokio::sync::Mutex<Option<Credentials>>,
}

impl Signer {
    /// A signer for `service` (`es`, `aoss`, `appsync`) with the region and credential chain
    /// of `aws`.
    pub async fn new(aws: &AwsSettings, service: &str) -> Result<Signer, String> {
        let sdk = aws.load().await;
        let provider = sdk
            .credentials_provider()
            .ok_or("no AWS credential provider is available")?;
        let region = sdk
            .region()
            .map(ToString::to_string)
            .ok_or("no AWS region is set: give `region` or set AWS_REGION")?;
        Ok(Signer {
            provider,
            region,
            service: service.to_owned(),
            cached: tokio::sync::Mutex::new(None),
        })
    }

    async fn credentials(&self) -> Result<Credentials, String> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref() {
            let fresh = c
                .expiry()
                .is_none_or(|e| e > SystemTime::now() + REFRESH_BEFORE);
            if fresh {
                return Ok(c.clone());
            }
        }
        let c = self
            .provider
            .provide_credentials()
            .await
            .map_err(|e| format!("cannot get AWS credentials: {e}"))?;
        *cached = Some(c.clone());
        Ok(c)
    }

    /// The headers a signed `POST` of `body` (of `content_type`) to `url` carries: the content
    /// type and the SigV4 headers. Added to a request with the same method, URL and body, they
    /// make it signed.
    pub async fn post_headers(
        &self,
        url: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<http::HeaderMap, String> {
        let mut req = http::Request::builder()
            .method("POST")
            .uri(url)
            .header(http::header::CONTENT_TYPE, content_type)
            .body(body.to_vec())
            .map_err(|e| format!("cannot sign a request to {url}: {e}"))?;
        self.sign(&mut req).await?;
        Ok(std::mem::take(req.headers_mut()))
    }

    /// Adds the SigV4 headers (`authorization`, `x-amz-date`, the session token and, for
    /// services that want it, `x-amz-content-sha256`) to `req`.
    async fn sign(&self, req: &mut http::Request<Vec<u8>>) -> Result<(), String> {
        let identity = self.credentials().await?.into();
        let mut settings = SigningSettings::default();
        if self.service == "aoss" || self.service == "es" {
            // OpenSearch Serverless requires the payload hash header; domains accept it.
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        }
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(&self.service)
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| format!("cannot sign: {e}"))?
            .into();
        let uri = req.uri().to_string();
        let headers: Vec<(&str, &str)> = req
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
            .collect();
        let signable = SignableRequest::new(
            req.method().as_str(),
            &uri,
            headers.into_iter(),
            SignableBody::Bytes(req.body()),
        )
        .map_err(|e| format!("cannot sign: {e}"))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| format!("cannot sign: {e}"))?
            .into_parts();
        instructions.apply_to_request_http1x(req);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn signs_with_the_service_region_and_payload_hash() {
        let provider = SharedCredentialsProvider::new(Credentials::new(
            "AKIDEXAMPLE",
            "secret",
            Some("token".into()),
            None,
            "test",
        ));
        let signer = Signer {
            provider,
            region: "eu-west-1".into(),
            service: "aoss".into(),
            cached: tokio::sync::Mutex::new(None),
        };
        let headers = signer
            .post_headers(
                "https://abc.eu-west-1.aoss.amazonaws.com/_bulk",
                "application/x-ndjson",
                b"{}\n",
            )
            .await
            .unwrap();
        let h = |k: &str| headers.get(k).unwrap().to_str().unwrap().to_owned();
        assert_eq!(h("content-type"), "application/x-ndjson");
        let auth = h("authorization");
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
            "{auth}"
        );
        assert!(auth.contains("/eu-west-1/aoss/aws4_request"), "{auth}");
        assert!(auth.contains("x-amz-content-sha256"), "{auth}");
        assert_eq!(h("x-amz-security-token"), "token");
        // SHA-256 of the body "{}\n".
        assert_eq!(
            h("x-amz-content-sha256"),
            "ca3d163bab055381827226140568f3bef7eaac187cebd76878e0b63e9e442356"
        );
    }
}
