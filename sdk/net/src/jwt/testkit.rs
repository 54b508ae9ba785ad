//! Real signed tokens for tests of JWT access (the `testkit` feature): an issuer with a fresh
//! Ed25519 key, its JWKS entry, and tokens it signs.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::KeyPair;
use serde_json::{Value, json};

/// An identity provider's signing key.
pub struct TestIssuer {
    kid: String,
    pkcs8: Vec<u8>,
    public: Vec<u8>,
}

impl TestIssuer {
    /// A fresh key named `kid`.
    pub fn new(kid: &str) -> TestIssuer {
        let rng = ring::rand::SystemRandom::new();
        let doc = match ring::signature::Ed25519KeyPair::generate_pkcs8(&rng) {
            Ok(d) => d,
            Err(e) => panic!("cannot make a key: {e}"),
        };
        let pair = match ring::signature::Ed25519KeyPair::from_pkcs8(doc.as_ref()) {
            Ok(p) => p,
            Err(e) => panic!("cannot read the key made: {e}"),
        };
        TestIssuer {
            kid: kid.to_owned(),
            pkcs8: doc.as_ref().to_vec(),
            public: pair.public_key().as_ref().to_vec(),
        }
    }

    /// The key's JWKS entry.
    pub fn jwk(&self) -> Value {
        json!({
            "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA",
            "kid": self.kid, "x": URL_SAFE_NO_PAD.encode(&self.public),
        })
    }

    /// A JWKS document with these issuers' keys.
    pub fn jwks(issuers: &[&TestIssuer]) -> String {
        json!({ "keys": issuers.iter().map(|i| i.jwk()).collect::<Vec<_>>() }).to_string()
    }

    /// A token with `claims`, signed with this key (EdDSA, `kid` set).
    pub fn token(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        match jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(&self.pkcs8)) {
            Ok(t) => t,
            Err(e) => panic!("cannot sign a token: {e}"),
        }
    }
}

/// Claims for `org` from `iss` for `aud`, expiring `expires_in` seconds from now (negative:
/// already expired).
pub fn claims(iss: &str, aud: &str, org: &str, expires_in: i64) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    json!({ "iss": iss, "aud": aud, "sub": "user-1", "organizationId": org, "iat": now, "exp": now + expires_in })
}

/// An HS256 token (a shared secret), which receivers must refuse.
pub fn hmac_token(claims: &Value) -> String {
    match jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(b"shared"),
    ) {
        Ok(t) => t,
        Err(e) => panic!("cannot sign a token: {e}"),
    }
}
