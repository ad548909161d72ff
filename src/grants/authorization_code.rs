//! RFC 6749 §4.1.3 authorization code grant with PKCE (RFC 7636 §4.6), issuing
//! an access token (RFC 9068), an ID token when `openid` was granted (OIDC Core
//! §3.1.3.3) and a refresh token when `offline_access` was granted.
//!
//! A code is consumed by one conditional UPDATE before anything is issued; a
//! second use fails and revokes what the first one issued (§4.1.2, §10.5), in
//! the database whatever Redis does. What a redemption issues is recorded in
//! the transaction that stores it, conditioned on no replay having been seen:
//! two redemptions in parallel never leave the winner's tokens unrevoked.

use super::{issue_for_user, stored_details, GrantContext, TokenResponse, UserIssue};
use crate::authorize::{hash_code, pkce_matches};
use crate::domain::{Client, GrantType, Scope};
use crate::error::OAuthError;
use crate::storage::interactions::{self, Claim, Consumed};

#[derive(Debug)]
pub struct Request {
    pub code: String,
    pub redirect_uri: String,
    pub code_verifier: String,
}

pub async fn grant(
    client: &Client,
    req: &Request,
    ctx: &GrantContext<'_>,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(OAuthError::UnauthorizedClient(
            "this client may not use authorization_code".into(),
        ));
    }
    let hash = hash_code(&req.code);
    let lookup = hash.clone();
    let consumed = ctx.db.run(move |c| interactions::consume_code(c, &lookup)).await?;
    let row = match consumed {
        Consumed::First(row) => row,
        Consumed::Unknown => return Err(OAuthError::InvalidGrant("the authorization code is invalid".into())),
        Consumed::Replayed(row) => {
            // §4.1.2: the code was used before; revoke what that use issued, in the
            // database (and its revocation log) before answering, whatever Redis does.
            let until = now + ctx.ttl.max_access_token_ttl;
            ctx.revocations
                .revoke_replayed_code(&hash, now, until)
                .await
                .map_err(|e| OAuthError::TemporarilyUnavailable(e.to_string()))?;
            tracing::warn!(client_id = %row.client_id, "authorization code replayed; its tokens were revoked");
            return Err(replayed());
        }
    };
    if row.client_id != client.id.as_str() {
        return Err(OAuthError::InvalidGrant(
            "the authorization code was issued to another client".into(),
        ));
    }
    if row.expires_at <= now {
        return Err(OAuthError::InvalidGrant("the authorization code has expired".into()));
    }
    if row.redirect_uri != req.redirect_uri {
        return Err(OAuthError::InvalidGrant(
            "redirect_uri differs from the authorization request".into(),
        ));
    }
    if !pkce_matches(&req.code_verifier, &row.code_challenge) {
        return Err(OAuthError::InvalidGrant(
            "code_verifier does not match the code_challenge".into(),
        ));
    }
    let scope = Scope::parse(&row.scope).map_err(OAuthError::ServerError)?;
    let details = stored_details(row.authorization_details.as_deref())?;
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
            family_details: details.as_ref(),
            nonce: row.nonce.as_deref(),
            auth_time: row.auth_time,
            family: None,
            refresh_expires_at: None,
            claim: Claim::Code(&hash),
            refresh_scope: None,
        },
        now,
    )
    .await?;
    // None: a replay of the code came first and revoked what it issued; this
    // redemption hands out nothing either.
    issued.map(|i| i.response).ok_or_else(replayed)
}

fn replayed() -> OAuthError {
    OAuthError::InvalidGrant("the authorization code was already used".into())
}
