//! The `deputy` binary itself, run as a child process against the database of
//! a running test server, and the configuration layers it loads.

use std::path::Path;
use std::process::Command;

use deputy::config::{Overrides, Settings};

use crate::helpers::{basic, spawn_app, TestApp};

const API: &str = "https://api.example.com";

/// What one run of the binary did.
#[derive(Debug)]
struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

/// Runs `deputy ARGS` on `database_url`, with no inherited `DEPUTY_*` variable
/// (nor anything else from this process's environment).
async fn deputy(database_url: &str, args: &[&str]) -> Run {
    let database_url = database_url.to_owned();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_deputy"))
            .args(&args)
            .env_clear()
            .env("DEPUTY_DATABASE_URL", &database_url)
            .env("RUST_LOG", "warn")
            .current_dir(std::env::temp_dir())
            .output()
            .expect("the deputy binary runs");
        Run {
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .expect("join")
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write file");
    path.to_string_lossy().into_owned()
}

fn client_toml(id: &str, secret: &str, scope: &str, resource: &str) -> String {
    format!(
        "[[clients]]\nclient_id = {id:?}\nclient_name = \"Client {id}\"\nclient_secret = {secret:?}\n\
         scope = {scope:?}\nresources = [{resource:?}]\n\n"
    )
}

async fn token_status(app: &TestApp, id: &str, secret: &str, extra: &[(&str, &str)]) -> (u16, String) {
    let mut params = vec![("grant_type", "client_credentials")];
    params.extend_from_slice(extra);
    let r = app.post_form("/token", Some(&basic(id, secret)), &params).await;
    (r.status, r.error().to_owned())
}

#[tokio::test]
async fn importing_a_file_twice_creates_once_and_the_server_then_serves_its_clients() {
    let app = spawn_app().await;
    let db = app.settings.database_url.clone();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(
        dir.path(),
        "clients.toml",
        &(client_toml("alpha", "alpha-secret-0123456789", "read write", API)
            + &client_toml("beta", "beta-secret-0123456789", "read", "https://beta.example.com")),
    );

    let first = deputy(&db, &["import", &file]).await;
    assert!(first.success, "{first:?}");
    assert!(
        first.stdout.contains("2 client(s) created, 0 updated or unchanged"),
        "{first:?}"
    );
    let shown_before = deputy(&db, &["client", "show", "alpha"]).await;
    assert!(shown_before.success, "{shown_before:?}");

    let second = deputy(&db, &["import", &file]).await;
    assert!(second.success, "{second:?}");
    assert!(
        second.stdout.contains("0 client(s) created, 2 updated or unchanged"),
        "{second:?}"
    );
    // Nothing changed, not even the registration time.
    let shown_after = deputy(&db, &["client", "show", "alpha"]).await;
    assert_eq!(shown_before.stdout, shown_after.stdout);

    let token = app
        .token(
            &("alpha".to_owned(), "alpha-secret-0123456789".to_owned()),
            &[("scope", "write")],
        )
        .await;
    assert_eq!(token.split('.').count(), 3);
    let (status, _) = token_status(&app, "beta", "beta-secret-0123456789", &[]).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_bad_import_file_fails_loudly_and_changes_nothing() {
    let app = spawn_app().await;
    let db = app.settings.database_url.clone();
    let dir = tempfile::tempdir().expect("tempdir");
    let good = write(
        dir.path(),
        "good.toml",
        &client_toml("first", "first-secret-0123456789", "read", API),
    );
    let run = deputy(&db, &["import", &good]).await;
    assert!(run.success, "{run:?}");

    // Each bad file would also add `second` and change `first`'s secret and scope.
    let changes = client_toml("second", "second-secret-0123456789", "read", API)
        + &client_toml("first", "first-new-secret-0123456789", "read write", API);
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "an unknown key in a client",
            format!("{changes}[[clients]]\nclient_id = \"third\"\nclient_name = \"Third\"\nclient_secret = \"third-secret-0123456789\"\nscopes = \"read\"\n"),
            vec!["unknown field `scopes`"],
        ),
        (
            "an unknown top-level key",
            format!("{changes}[[client]]\nclient_id = \"third\"\n"),
            vec!["unknown field `client`"],
        ),
        (
            "a client with a relative resource",
            changes.clone() + &client_toml("third", "third-secret-0123456789", "read", "/relative"),
            vec!["client third", "'/relative' is not an absolute URI"],
        ),
        (
            "a client with a fragment in its resource",
            changes.clone() + &client_toml("third", "third-secret-0123456789", "read", "https://api.example.com#x"),
            vec!["client third", "fragment"],
        ),
        (
            "a client with a short secret",
            changes.clone() + &client_toml("third", "short", "read", API),
            vec!["client third", "client_secret"],
        ),
        (
            "a client listed twice",
            changes.clone() + &client_toml("second", "second-secret-0123456789", "read", API),
            vec!["client second appears twice"],
        ),
        ("not TOML", "[[clients]\nclient_id = ".to_owned(), vec!["invalid import file"]),
    ];
    for (i, (case, text, words)) in cases.iter().enumerate() {
        let file = write(dir.path(), &format!("bad-{i}.toml"), text);
        let run = deputy(&db, &["import", &file]).await;
        assert!(!run.success, "{case}: must fail: {run:?}");
        for word in words {
            assert!(
                run.stderr.contains(word),
                "{case}: stderr should mention {word:?}: {run:?}"
            );
        }
        assert!(!run.stdout.contains("created"), "{case}: {run:?}");
    }
    let missing = deputy(&db, &["import", &dir.path().join("absent.toml").to_string_lossy()]).await;
    assert!(
        !missing.success && missing.stderr.contains("cannot read"),
        "{missing:?}"
    );

    // Nothing was written: `second` does not exist, `first` is as it was.
    let show = deputy(&db, &["client", "show", "second"]).await;
    assert!(!show.success, "{show:?}");
    let list = deputy(&db, &["client", "list"]).await;
    assert!(list.success, "{list:?}");
    let ids: Vec<&str> = list.stdout.lines().filter_map(|l| l.split('\t').next()).collect();
    assert_eq!(ids, vec!["first"], "{list:?}");
    let (status, _) = token_status(&app, "first", "first-secret-0123456789", &[]).await;
    assert_eq!(status, 200, "the old secret still works");
    let (status, error) = token_status(&app, "first", "first-new-secret-0123456789", &[]).await;
    assert_eq!(
        (status, error.as_str()),
        (401, "invalid_client"),
        "the new secret was not stored"
    );
    let (status, error) = token_status(&app, "first", "first-secret-0123456789", &[("scope", "write")]).await;
    assert_eq!(
        (status, error.as_str()),
        (400, "invalid_scope"),
        "the new scope was not stored"
    );
}

#[tokio::test]
async fn client_create_list_show_and_delete_manage_a_working_client() {
    let app = spawn_app().await;
    let db = app.settings.database_url.clone();

    let created = deputy(
        &db,
        &[
            "client",
            "create",
            "--name",
            "Reporting job",
            "--scope",
            "read",
            "--resource",
            API,
        ],
    )
    .await;
    assert!(created.success, "{created:?}");
    let out: serde_json::Value = serde_json::from_str(&created.stdout).expect("create prints JSON");
    let id = out["client_id"].as_str().expect("client_id").to_owned();
    let secret = out["client_secret"].as_str().expect("client_secret").to_owned();
    assert!(id.len() >= 16, "a random client id: {id}");
    assert!(secret.len() >= 32, "a strong secret");
    assert_eq!(out["client_name"], "Reporting job");
    assert_eq!(out["scope"], "read");
    assert_eq!(out["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(out["resources"], serde_json::json!([API]));

    // The printed secret works at the token endpoint.
    let r = app
        .post_form(
            "/token",
            Some(&basic(&id, &secret)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["scope"], "read");

    let list = deputy(&db, &["client", "list"]).await;
    assert!(list.success, "{list:?}");
    let line = list
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("{id}\t")))
        .unwrap_or_else(|| panic!("{id} listed: {list:?}"));
    assert!(
        line.contains("Reporting job") && line.contains("client_secret_basic"),
        "{line}"
    );
    assert!(!list.stdout.contains(&secret));

    let show = deputy(&db, &["client", "show", &id]).await;
    assert!(show.success, "{show:?}");
    let shown: serde_json::Value = serde_json::from_str(&show.stdout).expect("show prints JSON");
    assert_eq!(shown["client_id"], id.as_str());
    assert!(shown.get("client_secret").is_none(), "{shown}");
    assert!(!show.stdout.contains(&secret), "the secret is never shown again");
    assert!(!show.stdout.contains("$argon2"), "nor its hash");
    assert!(!show.stdout.to_lowercase().contains("hash"), "{}", show.stdout);

    // An application may list the agents that may act with its tokens (`requested_actor`).
    let with_agent = deputy(
        &db,
        &[
            "client",
            "create",
            "--name",
            "Chat app",
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            "https://chat.example/cb",
            "--agent",
            "planner",
        ],
    )
    .await;
    assert!(with_agent.success, "{with_agent:?}");
    let out: serde_json::Value = serde_json::from_str(&with_agent.stdout).expect("create prints JSON");
    assert_eq!(out["agents"], serde_json::json!(["planner"]), "{out}");
    let bad = deputy(&db, &["client", "create", "--name", "Bad", "--agent", "not an id"]).await;
    assert!(!bad.success && bad.stderr.contains("agents"), "{bad:?}");

    // An id that is taken is refused.
    let dup = deputy(
        &db,
        &[
            "client",
            "create",
            "--client-id",
            &id,
            "--name",
            "Dup",
            "--resource",
            API,
        ],
    )
    .await;
    assert!(!dup.success && dup.stderr.contains("already exists"), "{dup:?}");

    let deleted = deputy(&db, &["client", "delete", &id]).await;
    assert!(deleted.success, "{deleted:?}");
    // A running server may reuse a registration for a moment; within a few seconds it is gone.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let (status, error) = loop {
        let (status, error) = token_status(&app, &id, &secret, &[]).await;
        if status != 200 || std::time::Instant::now() > deadline {
            break (status, error);
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!((status, error.as_str()), (401, "invalid_client"));

    let show = deputy(&db, &["client", "show", &id]).await;
    assert!(!show.success && show.stderr.contains("no client"), "{show:?}");
    let again = deputy(&db, &["client", "delete", &id]).await;
    assert!(!again.success, "deleting twice fails: {again:?}");
}

#[tokio::test]
async fn the_binary_refuses_a_bad_configuration_before_touching_the_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("deputy.db").to_string_lossy().into_owned();
    let config = write(
        dir.path(),
        "deputy.toml",
        "issuer = \"https://deputy.example.com\"\nissuer_url = \"typo\"\n",
    );
    let run = deputy(&db, &["--config", &config, "migrate"]).await;
    assert!(!run.success && run.stderr.contains("issuer_url"), "{run:?}");
    let run = deputy(&db, &["--issuer", "http://deputy.example.com", "migrate"]).await;
    assert!(!run.success && run.stderr.contains("https"), "{run:?}");
    assert!(
        !Path::new(&db).exists(),
        "no database was created by a refused configuration"
    );

    let run = deputy(&db, &["--issuer", "https://deputy.example.com", "migrate"]).await;
    assert!(run.success, "{run:?}");
}

/// The TOML file, then `DEPUTY_*` variables, then flags, each override the one before.
#[test]
#[allow(clippy::result_large_err)] // figment::Jail's closure must return figment's (large) error
fn settings_layer_file_then_environment_then_flags() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "deputy.toml",
            "issuer = \"https://file.example.com\"\nlisten = \"127.0.0.1:9000\"\n\n[tokens]\naccess_token_ttl = 120\n",
        )?;
        let path = jail.directory().join("deputy.toml");
        let load = |o: &Overrides| Settings::load(Some(&path), o).map_err(|e| e.to_string());
        let flag = || Overrides {
            issuer: Some("https://flag.example.com".into()),
            ..Overrides::default()
        };

        let s = load(&Overrides::default())?;
        assert_eq!(s.issuer, "https://file.example.com");
        assert_eq!(s.listen, "127.0.0.1:9000");
        assert_eq!(s.tokens.access_token_ttl, 120);
        assert_eq!(
            s.tokens.max_access_token_ttl,
            Settings::default().tokens.max_access_token_ttl
        );

        jail.set_env("DEPUTY_ISSUER", "https://env.example.com");
        jail.set_env("DEPUTY_TOKENS__ACCESS_TOKEN_TTL", "90");
        let s = load(&Overrides::default())?;
        assert_eq!(s.issuer, "https://env.example.com");
        assert_eq!(s.tokens.access_token_ttl, 90);
        assert_eq!(
            s.listen, "127.0.0.1:9000",
            "the file still counts where env says nothing"
        );

        let s = load(&flag())?;
        assert_eq!(s.issuer, "https://flag.example.com");
        assert_eq!(s.tokens.access_token_ttl, 90);
        assert_eq!(s.listen, "127.0.0.1:9000");

        // Without a file, env and flags still layer over the defaults.
        let s = Settings::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
        assert_eq!(s.issuer, "https://env.example.com");
        let s = Settings::load(None, &flag()).map_err(|e| e.to_string())?;
        assert_eq!(s.issuer, "https://flag.example.com");
        Ok(())
    });
}

#[test]
#[allow(clippy::result_large_err)] // figment::Jail's closure must return figment's (large) error
fn an_unknown_key_or_a_missing_file_is_a_configuration_error() {
    figment::Jail::expect_with(|jail| {
        for (name, text, word) in [
            (
                "top.toml",
                "issuer = \"https://a.example.com\"\nisuser = \"x\"\n",
                "isuser",
            ),
            (
                "nested.toml",
                "[tokens]\naccess_token_lifetime = 60\n",
                "access_token_lifetime",
            ),
            (
                "wrong-type.toml",
                "[tokens]\naccess_token_ttl = \"sixty\"\n",
                "access_token_ttl",
            ),
        ] {
            jail.create_file(name, text)?;
            let err = Settings::load(Some(&jail.directory().join(name)), &Overrides::default())
                .expect_err(name)
                .to_string();
            assert!(err.contains(word), "{name}: {err}");
        }
        let err = Settings::load(Some(&jail.directory().join("absent.toml")), &Overrides::default())
            .expect_err("missing file")
            .to_string();
        assert!(err.contains("does not exist"), "{err}");
        Ok(())
    });
}

#[test]
#[allow(clippy::result_large_err)] // figment::Jail's closure must return figment's (large) error
fn an_http_issuer_is_refused_unless_it_is_loopback() {
    // In a jail too: it reads the environment, which the other jails change.
    figment::Jail::expect_with(|_| {
        let load = |issuer: &str| {
            Settings::load(
                None,
                &Overrides {
                    issuer: Some(issuer.into()),
                    ..Overrides::default()
                },
            )
        };
        for refused in [
            "http://deputy.example.com",
            "http://10.0.0.1:8080",
            "http://localhost.evil.example.com",
            "http://127.0.0.1.nip.io",
            "ftp://127.0.0.1",
            "https://deputy.example.com/",
            "https://deputy.example.com?x=1",
            "https://deputy.example.com#x",
            "deputy.example.com",
        ] {
            assert!(load(refused).is_err(), "{refused} must be refused");
        }
        for accepted in [
            "https://deputy.example.com",
            "https://deputy.example.com:8443",
            "http://localhost:8080",
            "http://127.0.0.1:8080",
            "http://[::1]:8080",
        ] {
            let s = load(accepted).map_err(|e| format!("{accepted}: {e}"))?;
            assert_eq!(s.issuer, accepted);
        }
        Ok(())
    });
}

#[tokio::test]
async fn agent_register_update_list_and_show_manage_an_agent() {
    let app = spawn_app().await;
    app.import(
        "[[clients]]\nclient_id = \"helper-client\"\nclient_name = \"Helper\"\nclient_secret = \"helper-secret-0123456789\"\n\
         grant_types = [\"urn:ietf:params:oauth:grant-type:token-exchange\"]\nscope = \"read\"\n",
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = |ttl: i64| {
        format!(
            "agent_id = \"helper\"\nclient_id = \"helper-client\"\nname = \"Helper\"\npublisher = \"Acme\"\n\
             allowed_scopes = \"read\"\nallowed_audiences = [\"{API}\"]\nmax_token_ttl = {ttl}\n"
        )
    };
    let file = write(dir.path(), "helper.toml", &spec(60));
    let db = &app.settings.database_url;
    let r = deputy(db, &["agent", "register", &file]).await;
    assert!(r.success, "{}", r.stderr);
    let again = deputy(db, &["agent", "register", &file]).await;
    assert!(
        !again.success && again.stderr.contains("already exists"),
        "{}",
        again.stderr
    );
    let file = write(dir.path(), "helper.toml", &spec(90));
    let r = deputy(db, &["agent", "update", &file]).await;
    assert!(r.success, "{}", r.stderr);
    let shown = deputy(db, &["agent", "show", "helper"]).await;
    let v: serde_json::Value = serde_json::from_str(&shown.stdout).expect("JSON");
    assert_eq!(v["max_token_ttl"], 90);
    assert_eq!(v["publisher"], "Acme");
    assert!(deputy(db, &["agent", "list"]).await.stdout.contains("helper"));
    let bad = write(
        dir.path(),
        "bad.toml",
        "agent_id = \"x\"\nclient_id = \"nobody\"\nname = \"X\"\npublisher = \"P\"\n",
    );
    let r = deputy(db, &["agent", "register", &bad]).await;
    assert!(!r.success && r.stderr.contains("nobody"), "{}", r.stderr);
    let r = deputy(db, &["agent", "update", "/nonexistent.toml"]).await;
    assert!(!r.success && r.stderr.contains("does not exist"), "{}", r.stderr);
}
