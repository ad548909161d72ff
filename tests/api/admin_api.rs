//! The admin API's own answers: what is the caller's fault is 400, what is
//! the storage's is 503, never the other way round.

use diesel::connection::SimpleConnection;
use serde_json::{json, Value};

use crate::helpers::{db_kind, spawn_app_with, DbKind, RedisChoice, TestApp};

const ADMIN: &str = "admin-token-0123456789-0123456789-admin-api";

async fn post_agent(app: &TestApp, body: Value) -> (u16, Value) {
    let r = app
        .http
        .post(format!("{}/admin/agents", app.address))
        .header("Authorization", format!("Bearer {ADMIN}"))
        .json(&body)
        .send()
        .await
        .expect("sent");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn agent(id: &str) -> Value {
    json!({"agent_id": id, "client_id": format!("{id}-client"), "name": "Helper", "publisher": "Acme",
           "allowed_scopes": "read", "allowed_audiences": ["https://api.example.com"],
           "max_token_ttl": 60, "max_delegation_depth": 1})
}

#[tokio::test]
async fn registering_an_agent_when_storage_fails_is_503_and_an_invalid_agent_is_400() {
    let app = spawn_app_with(RedisChoice::ByBackend, |s| s.admin_token = Some(ADMIN.into())).await;
    for c in ["helper-client", "helper2-client", "helper3-client"] {
        app.client(c, "read", &["https://api.example.com"]).await;
    }
    let (status, body) = post_agent(&app, agent("helper")).await;
    assert_eq!(status, 201, "{body}");
    // The caller's fault: a bad ceiling.
    let mut bad = agent("helper2");
    bad["max_token_ttl"] = json!(-5);
    let (status, body) = post_agent(&app, bad).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    // The storage's fault: the agents table refuses writes.
    let sql = match db_kind() {
        DbKind::Sqlite => {
            "CREATE TRIGGER deny_agents BEFORE INSERT ON agents BEGIN SELECT RAISE(ABORT, 'refused'); END;"
        }
        DbKind::Postgres => "ALTER TABLE agents ADD CONSTRAINT deny_agents CHECK (false) NOT VALID;",
    };
    app.state
        .db
        .run_blocking(|c| c.batch_execute(sql).map_err(deputy::storage::StorageError::from))
        .expect("test DDL");
    let (status, body) = post_agent(&app, agent("helper3")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("temporarily_unavailable")),
        "{body}"
    );
    let description = body["error_description"].as_str().unwrap_or_default();
    assert!(
        !description.contains("refused") && !description.contains("CHECK"),
        "no database text: {description}"
    );
}
