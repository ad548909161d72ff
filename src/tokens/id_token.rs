//! OpenID Connect ID tokens (OIDC Core §2, §3.1.3.6): signed with the client's
//! `id_token_signed_response_alg` key (RS256 by default), `typ: JWT`, `aud` the
//! client, `at_hash` binding the access token issued with it.

use base64::Engine;
use serde::Serialize;
use sha2::Digest;

use super::{Alg, KeySet, TokenError};

#[derive(Debug, Serialize)]
pub struct IdClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    pub at_hash: String,
    pub azp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// OIDC Core §3.1.3.6: the left half of the hash of the access token's ASCII,
/// base64url; SHA-256 for both RS256 and ES256.
pub fn at_hash(access_token: &str) -> String {
    let digest = sha2::Sha256::digest(access_token.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16])
}

pub fn issue(keys: &KeySet, alg: Alg, claims: &IdClaims) -> Result<String, TokenError> {
    match serde_json::to_value(claims) {
        Ok(serde_json::Value::Object(m)) => keys.sign(alg, "JWT", m),
        _ => Err(TokenError::Claims("claims are not an object".into())),
    }
}

/// Reads an ID token we issued, for `id_token_hint` at logout: signature by one
/// of our keys and our issuer are required; an expired token is still a hint.
pub fn read_hint(keys: &KeySet, issuer: &str, token: &str) -> Option<(String, String)> {
    let (claims, header) = keys
        .verify(token, Alg::RS256)
        .or_else(|_| keys.verify(token, Alg::ES256))
        .ok()?;
    // An access token (typ at+jwt) signed with the same key is not an ID token.
    if header.token_type() != Some("JWT") || claims.get("iss")?.as_str()? != issuer {
        return None;
    }
    Some((
        claims.get("sub")?.as_str()?.to_owned(),
        claims.get("aud")?.as_str()?.to_owned(),
    ))
}
