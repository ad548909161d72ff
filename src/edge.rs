//! Hostile input refused at the edge (STANDARDS rule 10): a query string that
//! holds a control character (U+0000 to U+001F, U+007F) once decoded is refused
//! before any handler sees it. Form bodies are checked where they are parsed
//! ([`crate::form::Form::parse`], [`crate::interaction::page_form`]).
//!
//! Browser pages answer with an HTML error page; everything else (the token,
//! introspection and revocation endpoints, userinfo, the admin API) with a
//! JSON `invalid_request` (RFC 6749 §5.2).

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::ResponseError;

use crate::error::OAuthError;
use crate::form::{control_refusal, has_control};

/// The name of the first query parameter holding a control character, if any.
pub fn hostile_query_parameter(query: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, v)| has_control(k) || has_control(v))
        .map(|(k, _)| k.into_owned())
}

pub async fn refuse_control_characters(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(name) = hostile_query_parameter(req.query_string()) else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let res = if crate::interaction::is_page(req.path()) {
        crate::interaction::control_characters_page()
    } else {
        OAuthError::InvalidRequest(control_refusal(&name)).error_response()
    };
    Ok(req.into_response(res).map_into_right_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_with_a_control_character_names_its_parameter() {
        assert_eq!(hostile_query_parameter("a=1&state=x%00y").as_deref(), Some("state"));
        assert_eq!(hostile_query_parameter("nonce=%1F").as_deref(), Some("nonce"));
        assert_eq!(hostile_query_parameter("x%7F=1").as_deref(), Some("x\u{7f}"));
        assert_eq!(hostile_query_parameter("state=%C3%A9+%20~"), None);
        assert_eq!(hostile_query_parameter(""), None);
    }
}
