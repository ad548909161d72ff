//! RFC 7009 token revocation. The token must belong to the calling client
//! (§2.1); unknown, invalid and already-expired tokens get 200 (§2.2), as do
//! wrong `token_type_hint`s. A 200 is sent only after the durable write, and
//! only when the revocation is visible to every instance; otherwise 503 (§2.2.1).

use super::{RevocationError, Revocations};
use crate::domain::Client;
use crate::error::OAuthError;
use crate::tokens::access;
use crate::tokens::Keys;

pub async fn revoke(
    caller: &Client,
    token: &str,
    keys: &Keys,
    validator: &access::Validator,
    revocations: &Revocations,
    access_until: i64,
    now: i64,
) -> Result<(), OAuthError> {
    let unavailable = |e: RevocationError| OAuthError::TemporarilyUnavailable(e.to_string());
    // Refresh tokens are opaque (no dots); the hint is only a hint (§2.1).
    if token.matches('.').count() != 2 {
        return match revocations
            .revoke_refresh_token(token, caller.id.as_str(), now, access_until)
            .await
            .map_err(unavailable)?
        {
            Some(false) => Err(OAuthError::UnauthorizedClient(
                "this token was not issued to the calling client".into(),
            )),
            Some(true) => {
                tracing::info!(client_id = %caller.id, "refresh token family revoked");
                Ok(())
            }
            None => Ok(()),
        };
    }
    let claims = match validator.validate(keys, token, now).await {
        Ok(c) => c,
        // Unknown, malformed, foreign or expired: nothing to revoke, and §2.2 says 200.
        Err(_) => return Ok(()),
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
            Ok(())
        }
        Err(RevocationError::NotPropagated(e)) => Err(OAuthError::TemporarilyUnavailable(format!(
            "revocation stored but not yet visible to every instance: {e}"
        ))),
        Err(RevocationError::Unavailable(e)) => Err(OAuthError::TemporarilyUnavailable(e)),
    }
}
