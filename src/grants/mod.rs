//! The token endpoint's grants (RFC 6749 §4): the request is parsed into a
//! typed [`TokenRequest`] at the edge, then dispatched to one module per grant.

pub mod client_credentials;

use serde::Serialize;

use crate::domain::{ResourceUri, Scope};
use crate::error::OAuthError;
use crate::form::Form;

pub const CLIENT_CREDENTIALS: &str = "client_credentials";

/// Grant types the token endpoint implements (advertised in discovery).
pub const SUPPORTED: &[&str] = &[CLIENT_CREDENTIALS];

#[derive(Debug)]
pub enum TokenRequest {
    ClientCredentials(client_credentials::Request),
}

impl TokenRequest {
    pub fn parse(form: &Form) -> Result<TokenRequest, OAuthError> {
        // RFC 8707 allows several `resource`s, but Deputy issues tokens for exactly one audience.
        if form.is_repeated("resource") {
            return Err(OAuthError::InvalidTarget(
                "Deputy issues a token for exactly one resource per request".into(),
            ));
        }
        if let Some(name) = form.first_repeated() {
            return Err(OAuthError::InvalidRequest(format!(
                "parameter {name} appears more than once"
            )));
        }
        let grant_type = form
            .get("grant_type")
            .ok_or_else(|| OAuthError::InvalidRequest("grant_type is missing".into()))?;
        match grant_type {
            CLIENT_CREDENTIALS => Ok(TokenRequest::ClientCredentials(client_credentials::Request {
                scope: parse_scope(form)?,
                resource: parse_resource(form)?,
            })),
            other => Err(OAuthError::UnsupportedGrantType(format!(
                "grant_type {other:?} is not supported"
            ))),
        }
    }

    pub fn grant_type(&self) -> &'static str {
        match self {
            TokenRequest::ClientCredentials(_) => CLIENT_CREDENTIALS,
        }
    }
}

fn parse_scope(form: &Form) -> Result<Option<Scope>, OAuthError> {
    form.get("scope")
        .map(Scope::parse)
        .transpose()
        .map_err(OAuthError::InvalidScope)
}

fn parse_resource(form: &Form) -> Result<Option<ResourceUri>, OAuthError> {
    form.get("resource")
        .map(ResourceUri::parse)
        .transpose()
        .map_err(OAuthError::InvalidTarget)
}

/// RFC 6749 §5.1 successful response.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}
