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

/// RFC 6749 §5.2: `error_description` holds only `%x20-21 / %x23-5B / %x5D-7E`
/// (printable ASCII without `"` and `\`). Anything else becomes `?`, so that no
/// text, however it was worded or whatever input it quotes, leaves the charset.
pub fn description_charset(d: &str) -> String {
    d.chars()
        .map(|c| match c {
            '\u{20}'..='\u{21}' | '\u{23}'..='\u{5b}' | '\u{5d}'..='\u{7e}' => c,
            _ => '?',
        })
        .collect()
}

/// True if `d` is within the RFC 6749 §5.2 `error_description` charset.
pub fn in_description_charset(d: &str) -> bool {
    description_charset(d) == d
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
            // RFC 6749 §5.2: 401 (with a challenge) when the client tried the
            // Authorization header; otherwise 400, like every other error here.
            OAuthError::InvalidClient { basic: true, .. } | OAuthError::InvalidToken(_) | OAuthError::MissingToken => {
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
            body.insert("error_description".into(), description_charset(d).into());
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

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = "a \"quoted\" back\\slash \u{0}nul \ttab \u{7f} \u{a7}6 caf\u{e9} \u{202e}rtl";

    fn every_variant(d: &str) -> Vec<OAuthError> {
        vec![
            OAuthError::InvalidRequest(d.into()),
            OAuthError::invalid_client(d, true),
            OAuthError::invalid_client(d, false),
            OAuthError::InvalidGrant(d.into()),
            OAuthError::UnauthorizedClient(d.into()),
            OAuthError::UnsupportedGrantType(d.into()),
            OAuthError::InvalidScope(d.into()),
            OAuthError::InvalidTarget(d.into()),
            OAuthError::InvalidAuthorizationDetails(d.into()),
            OAuthError::MethodNotAllowed,
            OAuthError::InvalidToken(d.into()),
            OAuthError::MissingToken,
            OAuthError::InsufficientScope(d.into()),
            OAuthError::TemporarilyUnavailable(d.into()),
            OAuthError::ServerError(d.into()),
        ]
    }

    #[tokio::test]
    async fn every_error_renders_its_description_within_the_rfc_6749_charset() {
        for e in every_variant(HOSTILE) {
            let code = e.code();
            let res = e.error_response();
            let bytes = actix_web::body::to_bytes(res.into_body()).await.expect("body");
            let body: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
            assert_eq!(body["error"], code);
            let d = body["error_description"].as_str().expect("a description");
            assert!(!d.is_empty());
            assert!(in_description_charset(d), "{code}: {d:?}");
        }
    }

    #[test]
    fn the_charset_keeps_printable_ascii_and_replaces_the_rest() {
        assert_eq!(
            description_charset("scope 'x' (RFC 6749 s3.3)!"),
            "scope 'x' (RFC 6749 s3.3)!"
        );
        assert_eq!(description_charset("\"a\\b\u{a7}\u{0}"), "?a?b??");
    }

    #[test]
    fn invalid_client_is_401_with_a_challenge_only_after_basic() {
        let basic = OAuthError::invalid_client("x", true);
        assert_eq!(basic.status_code(), StatusCode::UNAUTHORIZED);
        assert!(basic.error_response().headers().contains_key(header::WWW_AUTHENTICATE));
        let post = OAuthError::invalid_client("x", false);
        assert_eq!(post.status_code(), StatusCode::BAD_REQUEST);
        assert!(!post.error_response().headers().contains_key(header::WWW_AUTHENTICATE));
    }
}
