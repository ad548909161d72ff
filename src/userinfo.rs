//! OIDC Core §5.3 UserInfo: the signed-in user's claims for an access token
//! that carries `openid`, filtered by the scopes it was granted. Errors follow
//! RFC 6750 §3 (`WWW-Authenticate: Bearer`).

use serde_json::{json, Value};

use crate::domain::UserId;
use crate::error::OAuthError;
use crate::revocation::{Revocations, TokenRef};
use crate::storage::{users, Db};
use crate::tokens::access::Validator;
use crate::tokens::Keys;

pub async fn userinfo(
    token: &str,
    keys: &Keys,
    validator: &Validator,
    revocations: &Revocations,
    db: &Db,
    now: i64,
) -> Result<Value, OAuthError> {
    let claims = validator
        .validate(keys, token, now)
        .await
        .map_err(|_| OAuthError::InvalidToken("the access token is invalid or expired".into()))?;
    match revocations.is_revoked(&TokenRef::of(&claims)).await {
        Ok(false) => {}
        Ok(true) => return Err(OAuthError::InvalidToken("the access token was revoked".into())),
        Err(e) => return Err(OAuthError::TemporarilyUnavailable(e.to_string())),
    }
    let scope: Vec<&str> = claims.scope.as_deref().unwrap_or_default().split(' ').collect();
    if !scope.contains(&"openid") || claims.grant_id.is_none() {
        return Err(OAuthError::InsufficientScope(
            "the access token was not granted openid".into(),
        ));
    }
    let uid = UserId::from_stored(claims.sub.clone());
    let user = match db.run(move |c| users::by_id(c, &uid)).await? {
        Some(u) if !u.disabled => u,
        _ => return Err(OAuthError::InvalidToken("the user is unknown or disabled".into())),
    };
    let mut body = json!({ "sub": user.id.as_str() });
    if scope.contains(&"profile") {
        body["name"] = user.display_name.clone().into();
        body["preferred_username"] = user.username.clone().into();
    }
    if scope.contains(&"email") {
        body["email"] = user.email.clone().into();
        // Deputy does not verify addresses; an administrator entered it.
        body["email_verified"] = false.into();
    }
    Ok(body)
}
