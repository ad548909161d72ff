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
        return Err(TokenError::Claims(format!("typ {typ:?} is not at+jwt")));
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
