//! RFC 7009 token revocation. The token must belong to the calling client
//! (§2.1); unknown, invalid and already-expired tokens get 200 (§2.2), as do
//! wrong `token_type_hint`s. A 200 is sent once the revocation is durable (in
//! the database and its revocation log): from then on no instance reports the
//! token active, whatever Redis's state (see [`super`]). If the database cannot
//! be written, 503 (§2.2.1), never a false 200.

use super::{RevocationError, Revocations};
use crate::domain::Client;
use crate::error::OAuthError;
use crate::storage::audit::AuditEvent;
use crate::tokens::access;
use crate::tokens::Keys;

/// What a revocation revoked, for the audit trail (`None`: nothing of the caller's).
fn revoked_event(client: &Client, kind: &str) -> AuditEvent {
    AuditEvent {
        event: "token_revoked".into(),
        decision: "revoked".into(),
        reason: Some(format!("RFC 7009 revocation of a {kind} by its client")),
        client_id: Some(client.id.to_string()),
        ..AuditEvent::default()
    }
}

pub async fn revoke(
    caller: &Client,
    token: &str,
    keys: &Keys,
    validator: &access::Validator,
    revocations: &Revocations,
    access_until: i64,
    now: i64,
) -> Result<Option<AuditEvent>, OAuthError> {
    let unavailable = |e: RevocationError| OAuthError::TemporarilyUnavailable(e.to_string());
    // Refresh tokens are opaque (no dots); the hint is only a hint (§2.1).
    if token.matches('.').count() != 2 {
        return match revocations
            .revoke_refresh_token(token, caller.id.as_str(), now, access_until)
            .await
            .map_err(unavailable)?
        {
            Some((false, _)) => Err(OAuthError::UnauthorizedClient(
                "this token was not issued to the calling client".into(),
            )),
            Some((true, row)) => {
                tracing::info!(client_id = %caller.id, "refresh token family revoked");
                Ok(Some(AuditEvent {
                    user_id: Some(row.user_id),
                    scope: Some(row.scope),
                    audience: row.resource,
                    grant_id: Some(row.grant_id),
                    agent_id: row.may_act,
                    ..revoked_event(caller, "refresh token (and its family)")
                }))
            }
            None => Ok(None),
        };
    }
    let claims = match validator.validate(keys, token, now).await {
        Ok(c) => c,
        // Unknown, malformed, foreign or expired: nothing to revoke, and §2.2 says 200.
        Err(_) => return Ok(None),
    };
    if claims.client_id != caller.id.as_str() {
        return Err(OAuthError::UnauthorizedClient(
            "this token was not issued to the calling client".into(),
        ));
    }
    match revocations
        .revoke(&claims.jti, &claims.client_id, claims.exp, now)
        .await
    {
        Ok(()) => {
            tracing::info!(jti = %claims.jti, client_id = %claims.client_id, "token revoked");
            metrics::counter!("deputy_tokens_revoked_total").increment(1);
            let chain = claims.actors();
            Ok(Some(AuditEvent {
                agent_id: chain.first().cloned(),
                chain: (!chain.is_empty()).then(|| serde_json::Value::from(chain).to_string()),
                user_id: claims.grant_id.is_some().then(|| claims.sub.clone()),
                scope: claims.scope.clone(),
                audience: Some(claims.aud.clone()),
                grant_id: claims.grant_id.clone(),
                authorization_details: claims.authorization_details.as_ref().map(|d| d.to_string()),
                ..revoked_event(caller, "access token")
            }))
        }
        Err(RevocationError::Unavailable(e)) => Err(OAuthError::TemporarilyUnavailable(e)),
    }
}
