//! `GET /jwks.json` (RFC 7517 §5): the public keys, including retired ones
//! whose tokens may still be alive.

use actix_web::{web, HttpResponse};

use crate::startup::AppState;

pub async fn get_jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=60"))
        .json(state.keys.current().jwks())
}
