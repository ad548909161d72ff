//! JWT access tokens, RFC 9068: `typ: at+jwt`, and `iss exp aud sub client_id iat jti`.

use serde::{Deserialize, Serialize};

use super::keys::{verify_with_refresh, Alg, KeySet, Keys};
use super::{TokenError, CLOCK_SKEW_SECS};

/// RFC 9068 §2.1: the media type `application/at+jwt`, written without its prefix.
pub const TYP: &str = "at+jwt";

/// The claims Deputy puts in an access token. Unknown claims in a token are
/// ignored, but a known claim of the wrong JSON type makes the token invalid.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The consent grant the token was issued under; revoking it revokes the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
    /// RFC 8693 §4.1: the current actor, nesting earlier actors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<serde_json::Value>,
    /// RFC 8693 §4.4: who may act for the subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub may_act: Option<serde_json::Value>,
    /// RFC 9396 rich authorization details the token carries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_details: Option<serde_json::Value>,
    /// The `jti`s of the tokens this one was exchanged from, nearest last:
    /// revoking any of them revokes this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anc: Option<Vec<String>>,
}

impl AccessClaims {
    /// The agents in the `act` chain, outermost (current) actor first.
    pub fn actors(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = self.act.as_ref();
        while let Some(a) = cur {
            match a.get("sub").and_then(|s| s.as_str()) {
                Some(sub) => out.push(sub.to_owned()),
                None => break,
            }
            cur = a.get("act");
        }
        out
    }
}

pub fn issue(keys: &KeySet, claims: &AccessClaims) -> Result<String, TokenError> {
    let map = match serde_json::to_value(claims) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => return Err(TokenError::Claims("claims are not an object".into())),
    };
    keys.sign(Alg::ES256, TYP, map)
}

/// Validates an access token that Deputy issued: signature with one of our keys,
/// `typ`, `iss`, `exp`, `iat`, `nbf`, and that `aud` and `jti` are present.
/// Revocation and the caller's right to see the token are checked by the caller.
pub async fn validate(keys: &Keys, issuer: &str, token: &str, now: i64) -> Result<AccessClaims, TokenError> {
    let (claims, header) = verify_with_refresh(keys, token, Alg::ES256).await?;
    let typ = header.token_type().unwrap_or_default();
    if !typ.eq_ignore_ascii_case(TYP) && !typ.eq_ignore_ascii_case("application/at+jwt") {
        return Err(TokenError::Claims(format!("typ '{typ}' is not at+jwt")));
    }
    let nbf = match claims.get("nbf") {
        None => None,
        Some(v) => Some(
            v.as_i64()
                .ok_or_else(|| TokenError::Claims("nbf is not an integer".into()))?,
        ),
    };
    let parsed: AccessClaims =
        serde_json::from_value(serde_json::Value::Object(claims)).map_err(|e| TokenError::Claims(e.to_string()))?;
    if parsed.iss != issuer {
        return Err(TokenError::Claims("foreign issuer".into()));
    }
    if parsed.exp <= now {
        return Err(TokenError::Expired);
    }
    if parsed.iat > now + CLOCK_SKEW_SECS || nbf.is_some_and(|n| n > now + CLOCK_SKEW_SECS) {
        return Err(TokenError::Claims("token is not valid yet".into()));
    }
    if parsed.aud.is_empty() || parsed.jti.is_empty() || parsed.sub.is_empty() || parsed.client_id.is_empty() {
        return Err(TokenError::Claims("empty aud, jti, sub or client_id".into()));
    }
    Ok(parsed)
}

/// Validates access tokens, remembering the ones it has already validated.
///
/// Resource servers introspect the same token again and again; its signature
/// need not be checked each time. An entry is keyed by the SHA-256 of the whole
/// compact token (any change to header, payload or signature misses), and is
/// used only while the token is unexpired and its signing key still trusted.
/// Revocation is never cached: callers check it on every use.
pub struct Validator {
    issuer: String,
    cache: std::sync::Mutex<std::collections::HashMap<[u8; 32], (AccessClaims, String)>>,
    max_entries: usize,
}

impl Validator {
    pub fn new(issuer: String, max_entries: usize) -> Validator {
        Validator {
            issuer,
            cache: Default::default(),
            max_entries,
        }
    }

    pub async fn validate(&self, keys: &Keys, token: &str, now: i64) -> Result<AccessClaims, TokenError> {
        use sha2::Digest;
        if self.max_entries == 0 {
            return validate(keys, &self.issuer, token, now).await;
        }
        let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let hit = self.cache.lock().ok().and_then(|c| c.get(&digest).cloned());
        if let Some((claims, kid)) = hit {
            if claims.exp <= now {
                return Err(TokenError::Expired);
            }
            if keys.current().has_kid(&kid) {
                return Ok(claims);
            }
        }
        let claims = validate(keys, &self.issuer, token, now).await?;
        let kid = josekit::jwt::decode_header(token)
            .ok()
            .and_then(|h| h.claim("kid").and_then(|k| k.as_str()).map(str::to_owned));
        if let (Some(kid), Ok(mut cache)) = (kid, self.cache.lock()) {
            if cache.len() >= self.max_entries {
                cache.retain(|_, (c, _)| c.exp > now);
                if cache.len() >= self.max_entries {
                    cache.clear();
                }
            }
            cache.insert(digest, (claims.clone(), kid));
        }
        Ok(claims)
    }
}
