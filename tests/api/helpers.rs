//! `spawn_app()`: the real server on a random port with isolated storage.
//!
//! `TEST_DATABASE=sqlite` (default) runs the embedded default: a fresh SQLite
//! file per test and no Redis. `TEST_DATABASE=postgres` gives each test a
//! fresh PostgreSQL database and a unique Redis key prefix, like a production
//! deployment. Missing services make tests fail loudly, never skip.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use deputy::config::Settings;
use deputy::startup::{AppState, Application};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Sqlite,
    Postgres,
}

pub fn db_kind() -> DbKind {
    match std::env::var("TEST_DATABASE").as_deref() {
        Err(_) | Ok("sqlite") | Ok("") => DbKind::Sqlite,
        Ok("postgres") => DbKind::Postgres,
        Ok(other) => panic!("TEST_DATABASE={other:?}: expected sqlite or postgres"),
    }
}

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn postgres_base() -> String {
    std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A fresh database URL for one test.
fn fresh_database(dir: &tempfile::TempDir) -> String {
    match db_kind() {
        DbKind::Sqlite => dir.path().join("deputy.db").to_string_lossy().into_owned(),
        DbKind::Postgres => {
            use diesel::{Connection, RunQueryDsl};
            let name = format!("deputy_t_{}", unique());
            let admin = format!("{}/postgres", postgres_base());
            let mut conn = diesel::PgConnection::establish(&admin)
                .unwrap_or_else(|e| panic!("PostgreSQL is required for TEST_DATABASE=postgres ({admin}): {e}"));
            diesel::sql_query(format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .expect("create test database");
            format!("{}/{name}", postgres_base())
        }
    }
}

/// How a test wants Redis: as the backend decides, not at all, or at a given URL.
#[derive(Clone)]
pub enum RedisChoice {
    ByBackend,
    Off,
    At(String),
}

pub struct TestApp {
    pub address: String,
    pub settings: Settings,
    pub http: reqwest::Client,
    pub state: Arc<AppState>,
    _dir: Arc<tempfile::TempDir>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(RedisChoice::ByBackend, |_| {}).await
}

pub async fn spawn_app_with(redis: RedisChoice, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
    let d = dir.clone();
    let database_url = tokio::task::spawn_blocking(move || fresh_database(&d))
        .await
        .expect("db setup");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let mut settings = Settings {
        listen: format!("127.0.0.1:{port}"),
        issuer: format!("http://127.0.0.1:{port}"),
        database_url,
        workers: Some(1),
        redis_prefix: format!("deputy-test:{}:", unique()),
        ..Settings::default()
    };
    settings.keys.refresh_interval_secs = 1;
    // PostgreSQL needs a key-encryption key from the configuration (SQLite's default is a key
    // file beside the database); every instance and CLI run of this deployment shares it.
    if db_kind() == DbKind::Postgres {
        settings.key_encryption_key = Some(deputy::tokens::at_rest::generate_kek());
    }
    settings.redis_url = match redis {
        RedisChoice::ByBackend if db_kind() == DbKind::Postgres => Some(redis_url()),
        RedisChoice::ByBackend | RedisChoice::Off => None,
        RedisChoice::At(url) => Some(url),
    };
    tweak(&mut settings);
    start(settings, listener, dir).await
}

async fn start(settings: Settings, listener: TcpListener, dir: Arc<tempfile::TempDir>) -> TestApp {
    let port = listener.local_addr().expect("addr").port();
    let app = Application::build_with_listener(settings.clone(), listener)
        .await
        .expect("server starts");
    let state = app.state();
    tokio::spawn(app.into_server());
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client");
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        settings,
        http,
        state,
        _dir: dir,
    }
}

/// A response as a test looks at it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("<no error field>")
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub fn basic(id: &str, secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

impl TestApp {
    /// A second instance of the same deployment: same database, Redis prefix and issuer, another port.
    pub async fn spawn_peer(&self) -> TestApp {
        self.spawn_peer_with(|_| {}).await
    }

    /// A second instance of the same deployment, its settings changed by `tweak` (e.g. another
    /// path to the same Redis).
    pub async fn spawn_peer_with(&self, tweak: impl FnOnce(&mut Settings)) -> TestApp {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut settings = self.settings.clone();
        tweak(&mut settings);
        settings.listen = format!("127.0.0.1:{}", listener.local_addr().expect("addr").port());
        start(settings, listener, self._dir.clone()).await
    }

    /// Runs `deputy ARGS` against the app's storage, with nothing inherited from this process.
    pub async fn cli(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_deputy"));
        cmd.args(args)
            .env_clear()
            .env("DEPUTY_DATABASE_URL", &self.settings.database_url)
            .env("RUST_LOG", "warn")
            .current_dir(std::env::temp_dir());
        if let Some(kek) = &self.settings.key_encryption_key {
            cmd.env("DEPUTY_KEY_ENCRYPTION_KEY", kek);
        }
        // The operator runs the CLI with the deployment's configuration, Redis included.
        if let Some(redis) = &self.settings.redis_url {
            cmd.env("DEPUTY_REDIS_URL", redis)
                .env("DEPUTY_REDIS_PREFIX", &self.settings.redis_prefix);
        }
        tokio::task::spawn_blocking(move || cmd.output().expect("the deputy binary runs"))
            .await
            .expect("join")
    }

    /// Applies an import file (TOML) to this app's database.
    pub async fn import(&self, toml_text: &str) {
        let file = deputy::import::parse(toml_text).expect("valid import file");
        let db = self.state.db.clone();
        tokio::task::spawn_blocking(move || deputy::import::apply(&db, &file, deputy::clock::now()))
            .await
            .expect("join")
            .expect("import succeeds");
    }

    /// Registers a `client_secret_basic` client allowed `scope` on `resources`.
    pub async fn client(&self, id: &str, scope: &str, resources: &[&str]) -> (String, String) {
        let secret = format!("{id}-secret-0123456789");
        let res: Vec<String> = resources.iter().map(|r| format!("{r:?}")).collect();
        self.import(&format!(
            "[[clients]]\nclient_id = {id:?}\nclient_name = \"Test {id}\"\nclient_secret = {secret:?}\n\
             scope = {scope:?}\nresources = [{}]\n",
            res.join(", ")
        ))
        .await;
        (id.to_owned(), secret)
    }

    /// POSTs a form; `auth` is an optional `Authorization` header value.
    pub async fn post_form(&self, path: &str, auth: Option<&str>, params: &[(&str, &str)]) -> Reply {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        self.post_raw(path, auth, "application/x-www-form-urlencoded", body.into_bytes())
            .await
    }

    pub async fn post_raw(&self, path: &str, auth: Option<&str>, content_type: &str, body: Vec<u8>) -> Reply {
        let mut req = self
            .http
            .post(format!("{}{path}", self.address))
            .header("Content-Type", content_type)
            .body(body);
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        let res = req.send().await.expect("request sent");
        reply(res).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        let res = self
            .http
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request sent");
        reply(res).await
    }

    /// Gets a client_credentials token or panics with the error.
    pub async fn token(&self, (id, secret): &(String, String), extra: &[(&str, &str)]) -> String {
        let mut params = vec![("grant_type", "client_credentials")];
        params.extend_from_slice(extra);
        let r = self.post_form("/token", Some(&basic(id, secret)), &params).await;
        assert_eq!(r.status, 200, "token request failed: {:?}", r.body);
        r.body["access_token"].as_str().expect("access_token").to_owned()
    }

    pub async fn introspect(&self, (id, secret): &(String, String), token: &str) -> Reply {
        self.post_form("/introspect", Some(&basic(id, secret)), &[("token", token)])
            .await
    }
}

async fn reply(res: reqwest::Response) -> Reply {
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let bytes = res.bytes().await.expect("body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    Reply { status, headers, body }
}

/// Verifies a JWT against the JWKS the server publishes, with the
/// `openidconnect` crate's JWK implementation, and returns (header, claims).
pub async fn verify_with_jwks(app: &TestApp, jwt: &str) -> (Value, Value) {
    use openidconnect::core::{CoreJsonWebKeySet, CoreJwsSigningAlgorithm};
    use openidconnect::{JsonWebKey, JsonWebKeySetUrl};
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "a compact JWS has three parts");
    let header: Value = serde_json::from_slice(&b64.decode(parts[0]).expect("b64 header")).expect("json header");
    let claims: Value = serde_json::from_slice(&b64.decode(parts[1]).expect("b64 claims")).expect("json claims");
    let sig = b64.decode(parts[2]).expect("b64 signature");
    let http = openidconnect::reqwest::Client::new();
    let url = JsonWebKeySetUrl::new(format!("{}/jwks.json", app.address)).expect("url");
    let jwks = CoreJsonWebKeySet::fetch_async(&url, &http).await.expect("JWKS fetched");
    let kid = header["kid"].as_str().expect("kid in header");
    let key = jwks
        .keys()
        .iter()
        .find(|k| k.key_id().map(|i| i.as_str()) == Some(kid))
        .expect("kid published in JWKS");
    let alg = match header["alg"].as_str() {
        Some("ES256") => CoreJwsSigningAlgorithm::EcdsaP256Sha256,
        Some("RS256") => CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        other => panic!("unexpected alg {other:?}"),
    };
    key.verify_signature(&alg, format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
        .expect("signature verifies against the published key");
    (header, claims)
}

/// A TCP proxy in front of Redis that a test can cut, to see Redis "go down",
/// and restore.
pub struct CuttableProxy {
    pub url: String,
    down: Arc<std::sync::atomic::AtomicBool>,
    cut: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl CuttableProxy {
    pub async fn start(target: &str) -> CuttableProxy {
        use std::sync::atomic::Ordering;
        let target = target.trim_start_matches("redis://").trim_end_matches('/').to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let url = format!("redis://{}", listener.local_addr().expect("addr"));
        let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let cut = Arc::new(tokio::sync::Notify::new());
        let (is_down, on_cut) = (down.clone(), cut.clone());
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    break;
                };
                if is_down.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is reset
                }
                let (target, on_cut) = (target.clone(), on_cut.clone());
                conns.spawn(async move {
                    let cut = on_cut.notified();
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                            _ = cut => {}
                        }
                    }
                });
            }
        });
        CuttableProxy { url, down, cut, task }
    }

    /// Drops every proxied connection and refuses new ones until [`Self::restore`].
    pub fn cut(&self) {
        self.down.store(true, std::sync::atomic::Ordering::SeqCst);
        self.cut.notify_waiters();
    }

    pub fn restore(&self) {
        self.down.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for CuttableProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A `redis-server` of the test's own, on a free loopback port, for tests that
/// pause, sleep, snapshot, flush or stop Redis (never the shared one). Killed
/// on drop. `restart` starts it again on the same port and directory, loading
/// the snapshot there if `SAVE` wrote one.
pub struct PrivateRedis {
    pub port: u16,
    dir: tempfile::TempDir,
    child: std::sync::Mutex<Option<std::process::Child>>,
}

impl PrivateRedis {
    pub async fn start() -> PrivateRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("a free port")
            .local_addr()
            .expect("addr")
            .port();
        let r = PrivateRedis {
            port,
            dir: tempfile::tempdir().expect("tempdir"),
            child: std::sync::Mutex::new(None),
        };
        r.restart().await;
        r
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again), and waits until it answers PING.
    pub async fn restart(&self) {
        self.kill();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--enable-debug-command", "local", "--dir"])
            .arg(self.dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        *self.child.lock().expect("lock") = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut c) = self.try_conn().await {
                if redis::cmd("PING").query_async::<String>(&mut c).await.is_ok() {
                    return;
                }
            }
            assert!(std::time::Instant::now() < deadline, "the private redis did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn try_conn(&self) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        // Long enough for SAVE, and for a command queued behind DEBUG SLEEP.
        let config = redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(10)));
        redis::Client::open(self.url())?
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }

    /// A connection of the test's own (not the apps').
    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        self.try_conn().await.expect("the private redis is up")
    }

    /// Runs one command on a connection of its own; panics if Redis refuses it.
    pub async fn cmd<T: redis::FromRedisValue>(&self, args: &[&str]) -> T {
        let mut c = self.conn().await;
        redis::cmd(args[0])
            .arg(&args[1..])
            .query_async(&mut c)
            .await
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    /// Stops the server without saving (`SHUTDOWN NOSAVE`) and waits for its exit.
    pub async fn shutdown_nosave(&self) {
        if let Ok(mut c) = self.try_conn().await {
            // The server closes the connection instead of answering.
            let _ = redis::cmd("SHUTDOWN").arg("NOSAVE").query_async::<()>(&mut c).await;
        }
        let child = self.child.lock().expect("lock").take();
        if let Some(mut child) = child {
            tokio::task::spawn_blocking(move || child.wait())
                .await
                .expect("join")
                .expect("redis-server exits");
        }
    }

    fn kill(&self) {
        if let Some(mut child) = self.child.lock().expect("lock").take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}
