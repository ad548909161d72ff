//! RFC 6749 §4.4 client credentials grant, issuing RFC 9068 JWT access tokens
//! whose `aud` is the RFC 8707 resource the client asked for.

use super::{policy_refusal, shape, GrantContext, TokenResponse};
use crate::domain::{Agent, Client, GrantType, ResourceUri, Scope};
use crate::error::OAuthError;
use crate::policy::{Action, PolicyInput, Principal, Target};
use crate::tokens::access::{self, AccessClaims};
use crate::tokens::random_id;

#[derive(Debug)]
pub struct Request {
    pub scope: Option<Scope>,
    pub resource: Option<ResourceUri>,
}

/// Decides and issues. `client` is already authenticated; `agent` is the
/// registered agent it belongs to, if any (policies then see the agent).
pub fn grant(
    client: &Client,
    agent: Option<&Agent>,
    req: &Request,
    ctx: &GrantContext<'_>,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    let (keys, issuer, ttl) = (ctx.keys, ctx.issuer, ctx.ttl);
    if !client.allows_grant(GrantType::ClientCredentials) {
        return Err(OAuthError::UnauthorizedClient(
            "this client may not use client_credentials".into(),
        ));
    }
    // Without `scope`, the client gets what it is registered for (RFC 6749 §3.3 allows a default).
    let scope = match &req.scope {
        Some(s) if !s.is_subset(&client.scope) => {
            return Err(OAuthError::InvalidScope(
                "the requested scope exceeds what this client is registered for".into(),
            ))
        }
        Some(s) => s.clone(),
        None => client.scope.clone(),
    };
    let resource = match (&req.resource, client.resources.as_slice()) {
        (Some(r), allowed) if allowed.contains(r) => r.clone(),
        (Some(r), _) => {
            return Err(OAuthError::InvalidTarget(format!(
                "this client may not ask tokens for {r}"
            )))
        }
        (None, [only]) => only.clone(),
        (None, []) => {
            return Err(OAuthError::InvalidTarget(
                "this client has no resources registered".into(),
            ))
        }
        (None, _) => {
            return Err(OAuthError::InvalidTarget(
                "resource is required: this client has several".into(),
            ))
        }
    };
    let lifetime = client
        .access_token_ttl
        .unwrap_or(ttl.access_token_ttl)
        .min(ttl.max_access_token_ttl);
    let verdict = ctx.policy.decide(&PolicyInput {
        action: Action::ClientCredentials,
        principal: match agent {
            Some(a) => Principal::Agent(a),
            None => Principal::Client(client),
        },
        resource: Target::Resource(resource.as_str()),
        client,
        user: None,
        grant_type: super::CLIENT_CREDENTIALS,
        scope: &scope,
        audience: resource.as_str(),
        details: None,
        ttl: lifetime,
        chain: &[],
        address: ctx.address,
        sender_constrained: false,
        now,
    });
    if !verdict.allowed {
        return Err(policy_refusal(&verdict));
    }
    let (scope, exp) = shape(&verdict, scope, req.scope.is_some(), now + lifetime, now)?;
    let lifetime = exp - now;
    let claims = AccessClaims {
        iss: issuer.to_owned(),
        sub: client.id.as_str().to_owned(),
        aud: resource.as_str().to_owned(),
        exp: now + lifetime,
        iat: now,
        jti: random_id(),
        client_id: client.id.as_str().to_owned(),
        scope: (!scope.is_empty()).then(|| scope.to_string()),
        grant_id: None,
        act: None,
        may_act: None,
        authorization_details: None,
        anc: None,
    };
    let token = access::issue(keys, &claims).map_err(|e| OAuthError::ServerError(e.to_string()))?;
    Ok(TokenResponse {
        access_token: token,
        token_type: "Bearer",
        expires_in: lifetime,
        scope: claims.scope,
        refresh_token: None,
        id_token: None,
        issued_token_type: None,
        authorization_details: None,
    })
}
