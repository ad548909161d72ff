//! RFC 6749 §6 refresh token grant with rotation (RFC 9700 §4.14.2): each use
//! returns a new refresh token of the same family; presenting a used one
//! revokes the whole family and the access tokens it issued. The scope may only
//! narrow, and narrows the access token only: the new refresh token keeps the
//! old one's scope (§6: "the refresh token scope MUST be identical to that of
//! the refresh token included by the client"), so rotation continues even when
//! the narrower scope leaves out `offline_access`. The grant behind the family
//! must still be active. The old token is used up in the transaction that
//! stores the new one, so a reuse racing with the rotation always finds the new
//! token to revoke.

use super::{issue_for_user, stored_details, GrantContext, TokenResponse, UserIssue};
use crate::authorize::hash_code;
use crate::domain::{AuthorizationDetails, Client, GrantType, Scope};
use crate::error::OAuthError;
use crate::storage::interactions::{self, Claim};

#[derive(Debug)]
pub struct Request {
    pub refresh_token: String,
    pub scope: Option<Scope>,
    /// RFC 9396 §6: a refresh may narrow the details of its access token.
    pub authorization_details: Option<AuthorizationDetails>,
}

pub async fn grant(
    client: &Client,
    req: &Request,
    ctx: &GrantContext<'_>,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    if !client.allows_grant(GrantType::RefreshToken) {
        return Err(OAuthError::UnauthorizedClient(
            "this client may not use refresh_token".into(),
        ));
    }
    // Check first, consume after: a refused request (wrong client, wider scope)
    // must not use the token up (RFC 6749 §6 retires it only once a new one is issued).
    let hash = hash_code(&req.refresh_token);
    let lookup = hash.clone();
    let row = ctx
        .db
        .run(move |c| interactions::get_refresh(c, &lookup))
        .await?
        .ok_or_else(|| OAuthError::InvalidGrant("the refresh token is invalid".into()))?;
    if row.client_id != client.id.as_str() {
        return Err(OAuthError::InvalidGrant(
            "the refresh token was issued to another client".into(),
        ));
    }
    if row.expires_at <= now {
        return Err(OAuthError::InvalidGrant("the refresh token has expired".into()));
    }
    let original = Scope::parse(&row.scope).map_err(OAuthError::ServerError)?;
    let scope = match &req.scope {
        Some(s) if !s.is_subset(&original) => {
            return Err(OAuthError::InvalidScope(
                "a refresh may not widen the scope (RFC 6749 section 6)".into(),
            ))
        }
        Some(s) => s.clone(),
        None => original.clone(),
    };
    if row.used || row.revoked {
        return Err(reused(ctx, &row, now).await);
    }
    // The family's details, kept or narrowed for this access token, never more.
    let family_details = stored_details(row.authorization_details.as_deref())?;
    let details = match (&family_details, &req.authorization_details) {
        (None, Some(_)) => {
            return Err(OAuthError::InvalidAuthorizationDetails(
                "this refresh token carries no authorization_details, so it covers none".into(),
            ))
        }
        (Some(held), Some(asked)) => {
            held.covers(asked).map_err(OAuthError::InvalidAuthorizationDetails)?;
            Some(asked.clone())
        }
        (held, None) => held.clone(),
    };
    let issued = issue_for_user(
        client,
        ctx,
        UserIssue {
            user_id: &row.user_id,
            grant_id: &row.grant_id,
            scope: &scope,
            resource: row.resource.as_deref(),
            may_act: row.may_act.as_deref(),
            authorization_details: details.as_ref(),
            family_details: family_details.as_ref(),
            nonce: None,
            auth_time: row.auth_time,
            family: Some(&row.family_id),
            refresh_expires_at: Some(row.expires_at),
            claim: Claim::Refresh(&hash),
            refresh_scope: Some(&original),
        },
        now,
    )
    .await?;
    match issued {
        Some(i) => Ok(i.response),
        // Used (or revoked) meanwhile, by a parallel request: a reuse too.
        None => Err(reused(ctx, &row, now).await),
    }
}

/// A used or revoked refresh token presented: revokes its family (in the
/// database and its revocation log) unless it is revoked already.
async fn reused(ctx: &GrantContext<'_>, row: &interactions::RefreshRow, now: i64) -> OAuthError {
    if !row.revoked {
        if let Err(e) = ctx
            .revocations
            .revoke_family(&row.family_id, now, now + ctx.ttl.max_access_token_ttl)
            .await
        {
            return OAuthError::TemporarilyUnavailable(e.to_string());
        }
        tracing::warn!(client_id = %row.client_id, "refresh token reused; its family was revoked");
    }
    OAuthError::InvalidGrant("the refresh token was already used or revoked".into())
}
