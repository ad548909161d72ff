//! The one place errors become HTTP responses. Error codes are those of
//! RFC 6749 §5.2, RFC 8707 §2 (`invalid_target`), RFC 7009 §2.2.1 and RFC 6750.
//! Internal failures become `server_error` / `temporarily_unavailable`: their
//! cause is logged here and never sent.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    /// `basic` is true when the client tried HTTP Basic: the 401 then carries a Basic challenge.
    #[error("invalid_client: {description}")]
    InvalidClient { description: String, basic: bool },
    #[error("invalid_grant: {0}")]
    InvalidGrant(String),
    #[error("unauthorized_client: {0}")]
    UnauthorizedClient(String),
    #[error("unsupported_grant_type: {0}")]
    UnsupportedGrantType(String),
    #[error("invalid_scope: {0}")]
    InvalidScope(String),
    #[error("invalid_target: {0}")]
    InvalidTarget(String),
    /// RFC 9396 §5.
    #[error("invalid_authorization_details: {0}")]
    InvalidAuthorizationDetails(String),
    #[error("method_not_allowed")]
    MethodNotAllowed,
    /// RFC 6750 §3.1 at a protected resource (userinfo): a bad bearer token.
    #[error("invalid_token: {0}")]
    InvalidToken(String),
    /// RFC 6750 §3.1: no credentials at all; the challenge then carries no error code.
    #[error("no bearer token")]
    MissingToken,
    /// RFC 6750 §3.1: the token lacks a needed scope.
    #[error("insufficient_scope: {0}")]
    InsufficientScope(String),
    /// Something the server could not do right now (database or Redis unreachable).
    #[error("temporarily_unavailable: {0}")]
    TemporarilyUnavailable(String),
    /// A bug or an unexpected failure; the text is logged only.
    #[error("server_error: {0}")]
    ServerError(String),
}

impl OAuthError {
    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(_) | OAuthError::MethodNotAllowed | OAuthError::MissingToken => {
                "invalid_request"
            }
            OAuthError::InvalidClient { .. } => "invalid_client",
            OAuthError::InvalidGrant(_) => "invalid_grant",
            OAuthError::UnauthorizedClient(_) => "unauthorized_client",
            OAuthError::UnsupportedGrantType(_) => "unsupported_grant_type",
            OAuthError::InvalidScope(_) => "invalid_scope",
            OAuthError::InvalidTarget(_) => "invalid_target",
            OAuthError::InvalidAuthorizationDetails(_) => "invalid_authorization_details",
            OAuthError::TemporarilyUnavailable(_) => "temporarily_unavailable",
            OAuthError::InvalidToken(_) => "invalid_token",
            OAuthError::InsufficientScope(_) => "insufficient_scope",
            OAuthError::ServerError(_) => "server_error",
        }
    }

    fn description(&self) -> Option<&str> {
        match self {
            OAuthError::InvalidRequest(d)
            | OAuthError::InvalidGrant(d)
            | OAuthError::UnauthorizedClient(d)
            | OAuthError::UnsupportedGrantType(d)
            | OAuthError::InvalidScope(d)
            | OAuthError::InvalidTarget(d)
            | OAuthError::InvalidAuthorizationDetails(d)
            | OAuthError::InvalidToken(d)
            | OAuthError::InsufficientScope(d) => Some(d),
            OAuthError::InvalidClient { description, .. } => Some(description),
            OAuthError::MethodNotAllowed => Some("this endpoint accepts POST only"),
            OAuthError::MissingToken => Some("a bearer access token is required"),
            OAuthError::TemporarilyUnavailable(_) => Some("the server cannot answer safely right now; retry shortly"),
            OAuthError::ServerError(_) => Some("internal error"),
        }
    }

    pub fn invalid_client(description: impl Into<String>, basic: bool) -> OAuthError {
        OAuthError::InvalidClient {
            description: description.into(),
            basic,
        }
    }
}

impl From<StorageError> for OAuthError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Unavailable(m) => OAuthError::TemporarilyUnavailable(m),
            other => OAuthError::ServerError(other.to_string()),
        }
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        match self {
            OAuthError::InvalidClient { .. } | OAuthError::InvalidToken(_) | OAuthError::MissingToken => {
                StatusCode::UNAUTHORIZED
            }
            OAuthError::InsufficientScope(_) => StatusCode::FORBIDDEN,
            OAuthError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            OAuthError::TemporarilyUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            OAuthError::ServerError(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            OAuthError::ServerError(cause) => tracing::error!(%cause, "internal error"),
            OAuthError::TemporarilyUnavailable(cause) => tracing::warn!(%cause, "dependency unavailable"),
            other => tracing::info!(
                error = other.code(),
                description = other.description(),
                "request refused"
            ),
        }
        metrics::counter!("deputy_oauth_errors_total", "error" => self.code()).increment(1);
        let mut body = serde_json::Map::new();
        body.insert("error".into(), self.code().into());
        if let Some(d) = self.description() {
            body.insert("error_description".into(), d.into());
        }
        let mut res = HttpResponse::build(self.status_code());
        res.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
        res.insert_header((header::PRAGMA, HeaderValue::from_static("no-cache")));
        match self {
            OAuthError::InvalidClient { basic: true, .. } => {
                res.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"deputy\", charset=\"UTF-8\""),
                ));
            }
            OAuthError::InvalidClient { basic: false, .. } => {
                res.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"deputy\""),
                ));
            }
            OAuthError::MethodNotAllowed => {
                res.insert_header((header::ALLOW, HeaderValue::from_static("POST")));
            }
            OAuthError::MissingToken => {
                res.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"deputy\""),
                ));
            }
            OAuthError::InvalidToken(_) => {
                res.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"deputy\", error=\"invalid_token\""),
                ));
            }
            OAuthError::InsufficientScope(_) => {
                res.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"deputy\", error=\"insufficient_scope\", scope=\"openid\""),
                ));
            }
            OAuthError::TemporarilyUnavailable(_) => {
                res.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
            }
            _ => {}
        }
        res.json(serde_json::Value::Object(body))
    }
}
