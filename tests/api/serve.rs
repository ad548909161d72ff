//! `deputy serve` as a real process: what an operator sees in its logs.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::helpers::basic;

#[tokio::test]
async fn the_served_logs_carry_request_ids_but_never_a_secret_or_a_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("deputy.db").to_string_lossy().into_owned();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let secret = "log-secret-SHOULD-NEVER-BE-LOGGED";
    let import = dir.path().join("seed.toml");
    std::fs::write(
        &import,
        format!(
            "[[clients]]\nclient_id = \"logger\"\nclient_name = \"Logger\"\nclient_secret = \"{secret}\"\n\
             scope = \"read\"\nresources = [\"https://api.example.com\"]\n"
        ),
    )
    .expect("write import file");
    let bin = env!("CARGO_BIN_EXE_deputy");
    let env = |c: &mut Command| {
        c.env_clear()
            .env("DEPUTY_DATABASE_URL", &db)
            .env("DEPUTY_LISTEN", format!("127.0.0.1:{port}"))
            .env("DEPUTY_ISSUER", format!("http://127.0.0.1:{port}"))
            .env("DEPUTY_LOG_FORMAT", "json")
            .env("RUST_LOG", "trace");
    };
    let mut cmd = Command::new(bin);
    env(cmd.arg("import").arg(&import));
    assert!(cmd.status().expect("import runs").success());

    let mut cmd = Command::new(bin);
    env(cmd.arg("serve").stderr(Stdio::piped()).stdout(Stdio::null()));
    let mut child = cmd.spawn().expect("serve starts");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "deputy serve did not come up");

    let auth = basic("logger", secret);
    let token: serde_json::Value = http
        .post(format!("{base}/token"))
        .header("Authorization", &auth)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token request")
        .json()
        .await
        .expect("json");
    let token = token["access_token"].as_str().expect("token issued").to_owned();
    // A careless client puts its secret in the query string and the body; a wrong secret is tried too.
    let _ = http
        .post(format!("{base}/token?client_secret={secret}"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "logger"),
            ("client_secret", secret),
        ])
        .send()
        .await
        .expect("sent");
    let _ = http
        .post(format!("{base}/token"))
        .header("Authorization", basic("logger", &format!("{secret}-wrong")))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("sent");
    for path in ["/introspect", "/revoke", "/introspect"] {
        let r = http
            .post(format!("{base}{path}"))
            .header("Authorization", &auth)
            .form(&[("token", token.as_str())])
            .send()
            .await
            .expect("sent");
        assert!(r.status().is_success(), "{path}: {}", r.status());
    }

    let _ = child.kill();
    let mut logs = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut logs)
        .expect("read logs");
    let _ = child.wait();
    assert!(logs.contains("request_id"), "logs carry request ids:\n{logs}");
    assert!(logs.contains("\"route\":\"/token\""), "requests are logged:\n{logs}");
    assert!(!logs.contains(secret), "a client secret reached the logs");
    let signature = token.rsplit('.').next().expect("jws");
    assert!(
        !logs.contains(&token) && !logs.contains(signature),
        "a token reached the logs"
    );
}
