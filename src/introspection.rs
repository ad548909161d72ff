//! RFC 7662 token introspection. The caller is an authenticated client; a token
//! is shown active only if it is valid (signature, `typ`, `iss`, `exp`, `nbf`),
//! not revoked, and the caller may see it: the caller is the client it was
//! issued to, or a resource server whose registered resources include its `aud`.
//! Anything else (expired, revoked, malformed, unknown key, foreign issuer,
//! someone else's token) is `{"active": false}` and nothing more (§2.2).

use serde::Serialize;

use crate::domain::Client;
use crate::error::OAuthError;
use crate::revocation::{Revocations, TokenRef};
use crate::tokens::access::{self, AccessClaims};
use crate::tokens::Keys;

#[derive(Debug, Serialize)]
pub struct Introspection {
    pub active: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub claims: Option<Details>,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Details {
    Access(Box<ActiveClaims>),
    Refresh(serde_json::Map<String, serde_json::Value>),
}

#[derive(Debug, Serialize)]
pub struct ActiveClaims {
    pub token_type: &'static str,
    #[serde(flatten)]
    pub claims: AccessClaims,
}

impl Introspection {
    fn inactive() -> Introspection {
        Introspection {
            active: false,
            claims: None,
        }
    }
}

pub async fn introspect(
    caller: &Client,
    token: &str,
    keys: &Keys,
    validator: &access::Validator,
    revocations: &Revocations,
    now: i64,
) -> Result<Introspection, OAuthError> {
    if token.matches('.').count() != 2 {
        return introspect_refresh(caller, token, revocations, now).await;
    }
    let claims = match validator.validate(keys, token, now).await {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(reason = %e, "introspected token is not valid");
            return Ok(Introspection::inactive());
        }
    };
    let visible = claims.client_id == caller.id.as_str() || caller.resources.iter().any(|r| r.as_str() == claims.aud);
    if !visible {
        return Ok(Introspection::inactive());
    }
    // Fail closed: if revocation state cannot be read, answer 503, never active.
    match revocations.is_revoked(&TokenRef::of(&claims)).await {
        Ok(false) => Ok(Introspection {
            active: true,
            claims: Some(Details::Access(Box::new(ActiveClaims {
                token_type: "Bearer",
                claims,
            }))),
        }),
        Ok(true) => Ok(Introspection::inactive()),
        Err(e) => Err(OAuthError::TemporarilyUnavailable(e.to_string())),
    }
}

/// A refresh token (opaque) is active while unused, unrevoked, unexpired and
/// its grant stands; only the client it was issued to may see it.
async fn introspect_refresh(
    caller: &Client,
    token: &str,
    revocations: &Revocations,
    now: i64,
) -> Result<Introspection, OAuthError> {
    let unavailable = |e: crate::revocation::RevocationError| OAuthError::TemporarilyUnavailable(e.to_string());
    let Some(row) = revocations.lookup_refresh(token).await.map_err(unavailable)? else {
        return Ok(Introspection::inactive());
    };
    if row.used || row.revoked || row.expires_at <= now || row.client_id != caller.id.as_str() {
        return Ok(Introspection::inactive());
    }
    if revocations
        .is_revoked(&TokenRef {
            jtis: vec![row.access_jti.clone()],
            grant_id: Some(row.grant_id.clone()),
            agents: Vec::new(),
            subject: Some(row.user_id.clone()),
            client_id: Some(row.client_id.clone()),
            iat: row.created_at,
        })
        .await
        .map_err(unavailable)?
    {
        return Ok(Introspection::inactive());
    }
    let details = serde_json::json!({
        "token_type": "refresh_token",
        "sub": row.user_id,
        "client_id": row.client_id,
        "scope": row.scope,
        "exp": row.expires_at,
        "iat": row.created_at,
        "grant_id": row.grant_id,
    });
    Ok(Introspection {
        active: true,
        claims: details.as_object().cloned().map(Details::Refresh),
    })
}
