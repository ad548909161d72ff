//! The audit trail is part of the decision: an exchange whose audit record
//! cannot be written issues nothing (fail closed), and a revocation at
//! `/revoke` is recorded with the agent, the user and the grant it touched.

use diesel::connection::SimpleConnection;
use serde_json::Value;

use crate::helpers::{basic, db_kind, DbKind, RedisChoice};
use crate::token_exchange::{alice_token_for_planner, exchange, world, PLANNER};

/// Makes every insert into the audit table fail (`on`), or lets them through again.
fn refuse_audit_writes(app: &crate::helpers::TestApp, on: bool) {
    let sql = match (db_kind(), on) {
        (DbKind::Sqlite, true) => {
            "CREATE TRIGGER deny_audit BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'audit refused'); END;"
        }
        (DbKind::Sqlite, false) => "DROP TRIGGER deny_audit;",
        (DbKind::Postgres, true) => "ALTER TABLE audit_events ADD CONSTRAINT deny_audit CHECK (false) NOT VALID;",
        (DbKind::Postgres, false) => "ALTER TABLE audit_events DROP CONSTRAINT deny_audit;",
    };
    app.state
        .db
        .run_blocking(|c| c.batch_execute(sql).map_err(deputy::storage::StorageError::from))
        .expect("test DDL");
}

#[tokio::test]
async fn an_exchange_that_cannot_be_audited_issues_nothing() {
    let w = world(RedisChoice::ByBackend).await;
    let user_token = alice_token_for_planner(&w).await;
    refuse_audit_writes(&w.app, true);
    let r = exchange(&w, PLANNER, &w.planner, &user_token, &[]).await;
    assert_eq!((r.status, r.error()), (503, "temporarily_unavailable"), "{:?}", r.body);
    assert!(r.body.get("access_token").is_none(), "{:?}", r.body);
    refuse_audit_writes(&w.app, false);
    let r = exchange(&w, PLANNER, &w.planner, &user_token, &[]).await;
    assert_eq!(r.status, 200, "once the audit can be written again: {:?}", r.body);
}

#[tokio::test]
async fn a_revocation_at_the_revocation_endpoint_is_audited_with_agent_user_and_grant() {
    let w = world(RedisChoice::ByBackend).await;
    let user_token = alice_token_for_planner(&w).await;
    let token = exchange(&w, PLANNER, &w.planner, &user_token, &[("scope", "read")])
        .await
        .body["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let (_, claims) = crate::helpers::verify_with_jwks(&w.app, &token).await;
    let r = w
        .app
        .post_form("/revoke", Some(&basic(PLANNER.0, PLANNER.1)), &[("token", &token)])
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    let out = w.app.cli(&["audit", "tail", "--decision", "revoked"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let events: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let e = events
        .iter()
        .find(|e| e["event"] == "token_revoked")
        .unwrap_or_else(|| panic!("no token_revoked event: {events:?}"));
    assert_eq!(e["agent_id"], "planner", "{e}");
    assert_eq!(e["client_id"], PLANNER.0, "{e}");
    assert_eq!(e["user_id"], claims["sub"], "{e}");
    assert_eq!(e["grant_id"], claims["grant_id"], "{e}");
    assert_eq!(e["scope"], "read", "{e}");
}

#[tokio::test]
async fn user_token_grants_are_audited_issued_and_denied() {
    let w = world(RedisChoice::ByBackend).await;
    let user_token = alice_token_for_planner(&w).await;
    let (_, claims) = crate::helpers::verify_with_jwks(&w.app, &user_token).await;
    let r = w
        .app
        .post_form(
            "/token",
            Some(&basic(PLANNER.0, PLANNER.1)),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", "not-a-refresh-token"),
            ],
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);

    let out = w.app.cli(&["audit", "tail"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let events: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let issued = events
        .iter()
        .find(|e| e["event"] == "authorization_code" && e["decision"] == "issued")
        .unwrap_or_else(|| panic!("no issued authorization_code event: {events:?}"));
    assert_eq!(issued["user_id"], claims["sub"], "{issued}");
    assert_eq!(issued["client_id"], PLANNER.0, "{issued}");
    assert_eq!(issued["agent_id"], "planner", "the agent its may_act names: {issued}");
    assert_eq!(issued["grant_id"], claims["grant_id"], "{issued}");
    let denied = events
        .iter()
        .find(|e| e["event"] == "refresh_token" && e["decision"] == "denied")
        .unwrap_or_else(|| panic!("no denied refresh_token event: {events:?}"));
    assert_eq!(denied["client_id"], PLANNER.0, "{denied}");
    assert!(denied["reason"].as_str().is_some_and(|r| !r.is_empty()), "{denied}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("not-a-refresh-token"),
        "no token in the audit"
    );
}

#[tokio::test]
async fn the_audit_log_exports_a_range_as_json_lines_and_retention_deletes_only_older_events() {
    let w = world(RedisChoice::ByBackend).await;
    let user_token = alice_token_for_planner(&w).await;
    for _ in 0..3 {
        let r = exchange(&w, PLANNER, &w.planner, &user_token, &[]).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("audit.jsonl");
    let path = file.to_string_lossy().into_owned();
    let now = deputy::clock::now();
    let out = w
        .app
        .cli(&["audit", "export", "--until", &now.to_string(), "--output", &path])
        .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> = std::fs::read_to_string(&file)
        .expect("written")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert!(
        lines.iter().filter(|e| e["event"] == "token_exchange").count() >= 3,
        "{lines:?}"
    );
    assert!(lines.iter().all(|e| e["at"].as_i64().is_some_and(|at| at <= now)));
    // An existing file is never overwritten.
    let again = w.app.cli(&["audit", "export", "--output", &path]).await;
    assert!(!again.status.success());
    // Retention: what is older than the cut goes, the rest stays.
    let deleted = w
        .app
        .state
        .db
        .run_blocking(|c| deputy::storage::audit::delete_before(c, now + 1, 10_000))
        .expect("pruned");
    assert_eq!(deleted, lines.len());
    let out = w.app.cli(&["audit", "export", "--until", &now.to_string()]).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 0);
}
