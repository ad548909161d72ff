//! `POST /token` (RFC 6749 §3.2): parse the request, authenticate the client,
//! run the grant.

use actix_web::{web, HttpRequest, HttpResponse};

use super::{authorization_header, no_store_json, read_form};
use crate::client_auth::Credentials;
use crate::clock;
use crate::error::OAuthError;
use crate::grants::{
    authorization_code, client_credentials, refresh_token, token_exchange, GrantContext, TokenRequest,
};
use crate::startup::AppState;

pub async fn post_token(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, OAuthError> {
    let form = read_form(&req, payload).await?;
    let creds = Credentials::extract(authorization_header(&req)?, &form)?;
    let request = TokenRequest::parse(&form)?;
    let now = clock::now();
    let source = req.peer_addr().map(|a| a.ip());
    let client = state.client_auth.authenticate(creds, source, now).await?;
    let keys = state.keys.current();
    let ctx = GrantContext {
        db: &state.db,
        keys: &keys,
        issuer: &state.settings.issuer,
        ttl: &state.settings.tokens,
        revocations: &state.revocations,
        audit: &state.audit,
        registry: &state.registry,
        request_id: super::request_id(&req),
        policy: &state.policy,
        address: req.peer_addr().map(|a| a.ip()),
    };
    let response = match &request {
        TokenRequest::AuthorizationCode(r) => {
            audit_denial(
                &ctx,
                &client,
                "authorization_code",
                authorization_code::grant(&client, r, &ctx, now).await,
            )
            .await?
        }
        TokenRequest::RefreshToken(r) => {
            audit_denial(
                &ctx,
                &client,
                "refresh_token",
                refresh_token::grant(&client, r, &ctx, now).await,
            )
            .await?
        }
        TokenRequest::TokenExchange(r) => {
            token_exchange::grant(&client, r, &ctx, &state.keys, &state.validator, now).await?
        }
        TokenRequest::ClientCredentials(r) => {
            // A suspended agent's own client gets nothing (its registration is read
            // from the registry cache, so this holds within `client_cache_ttl_ms`).
            let agent = state.registry.agent_of_client(&state.db, &client.id).await?;
            if agent
                .as_ref()
                .is_some_and(|a| a.status != crate::domain::AgentStatus::Active)
            {
                return Err(OAuthError::UnauthorizedClient("the agent is suspended".into()));
            }
            audit_denial(
                &ctx,
                &client,
                "client_credentials",
                client_credentials::grant(&client, agent.as_deref(), r, &ctx, now),
            )
            .await?
        }
    };
    metrics::counter!("deputy_tokens_issued_total", "grant_type" => request.grant_type()).increment(1);
    Ok(no_store_json(&response))
}

/// A refused user-token grant is audited with its reason (issuance is audited
/// where the tokens are made, in `grants::issue_for_user`).
async fn audit_denial<T>(
    ctx: &GrantContext<'_>,
    client: &crate::domain::Client,
    grant_type: &str,
    outcome: Result<T, OAuthError>,
) -> Result<T, OAuthError> {
    if let Err(e) = &outcome {
        ctx.audit
            .record(crate::storage::audit::AuditEvent {
                event: grant_type.into(),
                decision: "denied".into(),
                reason: Some(e.to_string()),
                client_id: Some(client.id.to_string()),
                request_id: ctx.request_id.clone(),
                ..Default::default()
            })
            .await;
    }
    outcome
}
