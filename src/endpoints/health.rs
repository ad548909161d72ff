//! Operations: `/healthz` (the process answers), `/readyz` (database and, if
//! configured, Redis reachable), `/metrics` (Prometheus text format).

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::startup::AppState;

pub async fn get_healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

pub async fn get_readyz(state: web::Data<AppState>) -> HttpResponse {
    let db = state.db.ping().await;
    let redis = state.revocations.ping().await;
    let body = json!({
        "database": if db.is_ok() { "ok" } else { "unavailable" },
        "redis": match (&state.settings.redis_url, &redis) {
            (None, _) => "not configured",
            (Some(_), Ok(())) => "ok",
            (Some(_), Err(_)) => "unavailable",
        },
    });
    if db.is_ok() && redis.is_ok() {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

pub async fn get_metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}
