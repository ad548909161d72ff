//! `Application::build(settings)`: shared by `deputy serve` and the tests, so the
//! tests run the real server on port 0. It opens storage, loads keys, sets up
//! revocation and holds THE route table.

use std::net::TcpListener;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::admin;
use crate::client_auth::ClientAuthenticator;
use crate::config::Settings;
use crate::endpoints::{self, discovery, health, introspect, jwks, revoke, token, userinfo};
use crate::interaction::login::LoginLimits;
use crate::revocation::{RedisRevocations, Revocations};
use crate::storage::Db;
use crate::telemetry;
use crate::tokens::{access, Keys};
use actix_session::config::CookieContentSecurity;
use actix_session::storage::CookieSessionStore;
use actix_session::SessionMiddleware;
use actix_web::cookie::{Key, SameSite};

/// Everything a request may need, built once.
pub struct AppState {
    pub settings: Settings,
    pub db: Db,
    pub keys: Keys,
    pub validator: access::Validator,
    pub revocations: Revocations,
    pub client_auth: ClientAuthenticator,
    /// The bounded pool every argon2id verification runs on (client secrets, sign-ins).
    pub argon2: Arc<crate::argon2_pool::Argon2Pool>,
    pub metadata: serde_json::Value,
    pub metrics: PrometheusHandle,
    pub login_limits: LoginLimits,
    /// Authorization requests per client address (each valid one is stored).
    pub authorize_limits: governor::DefaultKeyedRateLimiter<std::net::IpAddr>,
    pub audit: crate::audit::AuditLog,
    pub registry: crate::grants::token_exchange::RegistryCache,
    /// The active Cedar policy set, refreshed from the database.
    pub policy: crate::policy::PolicyEngine,
}

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
}

/// The Prometheus recorder is process-wide by the `metrics` crate's design; it is
/// installed once, and every application in the process renders from it.
fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ])
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        metrics_exporter_prometheus::Matcher::Full("deputy_audit_batch_events".into()),
                        &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0],
                    )
                })
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder was installed first; then ours renders nothing new.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(&settings.listen)?;
        Application::build_with_listener(settings, listener).await
    }

    /// Like [`Application::build`], on a listener the caller bound (tests bind
    /// port 0 first, so that the issuer can name the real port).
    pub async fn build_with_listener(settings: Settings, listener: TcpListener) -> anyhow::Result<Application> {
        settings.validate()?;
        let s = settings.clone();
        let (db, keys, session_key) = tokio::task::spawn_blocking(move || -> anyhow::Result<(Db, Keys, Key)> {
            let db = Db::connect(&s.database_url, s.database_max_connections)?;
            let enc = Arc::new(crate::tokens::at_rest::KeyEncryption::from_settings(&s)?);
            let keys = Keys::load_or_generate(db.clone(), enc.clone())?;
            let session_key = session_key(&db, &enc)?;
            Ok((db, keys, session_key))
        })
        .await??;
        let revocations = match &settings.redis_url {
            None => Revocations::Database(db.clone()),
            Some(url) => {
                let r = RedisRevocations::new(
                    url,
                    &settings.redis_prefix,
                    Duration::from_millis(settings.redis_timeout_ms),
                    db.clone(),
                )?;
                // Reads the log's head (until then, and whenever Redis is behind
                // it, revocation checks use the database) and checks Redis's
                // eviction policy.
                r.start().await;
                Revocations::Redis(r)
            }
        };
        let (workers, queue) = settings.client_auth.argon2_pool_size();
        let argon2 = Arc::new(crate::argon2_pool::Argon2Pool::new(workers, queue));
        let mut failures = crate::auth_limits::FailureLimits::new(
            settings.client_auth.max_failed_authentications_per_minute_per_address,
            settings.client_auth.max_failed_authentications_per_minute,
        );
        if let Some(url) = &settings.redis_url {
            failures = failures.shared_through_redis(
                url,
                &settings.redis_prefix,
                Duration::from_millis(settings.redis_timeout_ms),
            )?;
        }
        let client_auth = ClientAuthenticator::new(
            db.clone(),
            settings.issuer.clone(),
            settings.client_auth.clone(),
            Arc::clone(&argon2),
            failures,
        )?;
        let audit = crate::audit::AuditLog::start(db.clone());
        let policy = crate::policy::PolicyEngine::new(&settings.policy.time_zone).map_err(|e| anyhow::anyhow!(e))?;
        // The active set is in force before the first request.
        policy.refresh(&db).await?;
        let state = web::Data::new(AppState {
            metadata: discovery::metadata(&settings),
            settings: settings.clone(),
            db,
            keys,
            validator: access::Validator::new(settings.issuer.clone(), settings.tokens.verified_cache_entries),
            revocations,
            client_auth,
            argon2,
            metrics: metrics_handle(),
            login_limits: LoginLimits::new(10, 30)?,
            authorize_limits: governor::RateLimiter::keyed(governor::Quota::per_minute(
                std::num::NonZeroU32::new(settings.max_authorization_requests_per_minute_per_address.max(1))
                    .unwrap_or(std::num::NonZeroU32::MIN),
            )),
            audit,
            registry: crate::grants::token_exchange::RegistryCache::new(Duration::from_millis(
                settings.client_auth.client_cache_ttl_ms,
            )),
            policy,
        });

        let port = listener.local_addr()?.port();
        let data = state.clone();
        let secure_cookies = settings.is_https();
        let mut server = HttpServer::new(move || {
            let sessions = SessionMiddleware::builder(CookieSessionStore::default(), session_key.clone())
                .cookie_name("deputy_session".into())
                .cookie_http_only(true)
                .cookie_secure(secure_cookies)
                .cookie_same_site(SameSite::Lax)
                .cookie_content_security(CookieContentSecurity::Private)
                .build();
            App::new()
                .app_data(data.clone())
                .wrap(actix_web::middleware::from_fn(crate::edge::refuse_control_characters))
                .wrap(actix_web::middleware::from_fn(telemetry::record_request))
                .wrap(telemetry::request_tracing())
                .wrap(telemetry::security_headers())
                .configure(routes)
                .app_data(web::QueryConfig::default().error_handler(|e, _| {
                    let body = serde_json::json!({
                        "error": "invalid_request",
                        "error_description": crate::error::description_charset(&e.to_string()),
                    });
                    actix_web::error::InternalError::from_response(e, actix_web::HttpResponse::BadRequest().json(body))
                        .into()
                }))
                .service(
                    web::scope("")
                        .wrap(sessions)
                        // A malformed query on a page gets a page, not a bare text answer.
                        .app_data(web::QueryConfig::default().error_handler(|e, _| {
                            let page = crate::interaction::error_page(
                                actix_web::http::StatusCode::BAD_REQUEST,
                                "This request cannot continue",
                                "The address is missing a parameter or has a malformed one.",
                            );
                            actix_web::error::InternalError::from_response(e, page).into()
                        }))
                        .configure(pages),
                )
        })
        .listen(listener)?
        .disable_signals();
        if let Some(w) = settings.workers {
            server = server.workers(w);
        }
        let server = server.run();
        spawn_background(state.clone());
        Ok(Application { port, server, state })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> Arc<AppState> {
        self.state.clone().into_inner()
    }

    pub fn server(&self) -> &Server {
        &self.server
    }

    /// Serves until the server stops (Ctrl-C or SIGTERM handled by the caller).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }

    /// Splits the application into its running server, for callers that want the handle.
    pub fn into_server(self) -> Server {
        self.server
    }
}

/// THE route table.
fn routes(cfg: &mut web::ServiceConfig) {
    let post_only = |path: &'static str, handler| {
        web::resource(path)
            .route(handler)
            .default_service(web::to(endpoints::method_not_allowed))
    };
    cfg.service(post_only("/token", web::post().to(token::post_token)))
        .service(post_only("/introspect", web::post().to(introspect::post_introspect)))
        .service(post_only("/revoke", web::post().to(revoke::post_revoke)))
        .route("/jwks.json", web::get().to(jwks::get_jwks))
        .route(
            "/.well-known/oauth-authorization-server",
            web::get().to(discovery::get_metadata),
        )
        .route(
            "/.well-known/openid-configuration",
            web::get().to(discovery::get_metadata),
        )
        .route("/healthz", web::get().to(health::get_healthz))
        .route("/readyz", web::get().to(health::get_readyz))
        .route("/metrics", web::get().to(health::get_metrics))
        .route("/userinfo", web::get().to(userinfo::get_userinfo))
        .route("/userinfo", web::post().to(userinfo::get_userinfo))
        .route("/static/deputy.css", web::get().to(stylesheet))
        .route("/admin/agents", web::get().to(admin::get_agents))
        .route("/admin/agents", web::post().to(admin::post_agent))
        .route("/admin/agents/{id}/{action}", web::post().to(admin::post_agent_status))
        .route("/admin/grants/{id}/revoke", web::post().to(admin::post_revoke_grant))
        .route(
            "/admin/users/{username}/{action}",
            web::post().to(admin::identities::post_user_status),
        )
        .route(
            "/admin/clients/{id}",
            web::delete().to(admin::identities::delete_client),
        )
        .route("/admin/audit", web::get().to(admin::get_audit))
        .route("/admin/policies", web::get().to(admin::policies::get_policies))
        .route("/admin/policies", web::post().to(admin::policies::post_policies))
        .route("/admin/policies/schema", web::get().to(admin::policies::get_schema))
        .route(
            "/admin/policies/rollback",
            web::post().to(admin::policies::post_rollback),
        )
        .route("/admin/policies/check", web::post().to(admin::policies::post_check))
        .route("/admin/policies/{version}", web::get().to(admin::policies::get_policy))
        .route(
            "/admin/policies/{version}/activate",
            web::post().to(admin::policies::post_activate),
        );
}

/// The browser pages, inside the session middleware. Their paths are also in
/// `interaction::PAGE_PATHS` (their refusals at the edge are pages).
fn pages(cfg: &mut web::ServiceConfig) {
    use crate::interaction::{account, authorize, consent, login, logout, session_list};
    cfg.route("/authorize", web::get().to(authorize::get_authorize))
        .route("/authorize", web::post().to(authorize::post_authorize))
        .route("/authorize/continue", web::get().to(authorize::get_continue))
        .route("/login", web::get().to(login::get_login))
        .route("/login", web::post().to(login::post_login))
        .route("/consent", web::get().to(consent::get_consent))
        .route("/consent", web::post().to(consent::post_consent))
        .route("/account", web::get().to(account::get_account))
        .route("/account/grants/revoke", web::post().to(account::post_revoke_grant))
        .route("/account/sessions/end", web::post().to(session_list::post_end_session))
        .route(
            "/account/sessions/end-all",
            web::post().to(session_list::post_end_all_sessions),
        )
        .route("/logout", web::get().to(logout::get_logout))
        .route("/logout", web::post().to(logout::post_logout));
}

async fn stylesheet() -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(include_str!("../static/deputy.css"))
}

/// The session cookie key: 64 random bytes, generated once and shared by every
/// instance through the database, where it is stored sealed under the
/// key-encryption key (re-sealed at start if it was not, in `Keys::load_or_generate`).
fn session_key(db: &Db, enc: &crate::tokens::at_rest::KeyEncryption) -> anyhow::Result<Key> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let ctx = crate::tokens::keys::secret_context("session_key");
    let stored = db
        .run_blocking(|c| {
            crate::storage::secrets::get_or_create(c, "session_key", crate::clock::now(), || {
                use rand::RngCore;
                let mut k = [0u8; 64];
                rand::thread_rng().fill_bytes(&mut k);
                enc.seal(&ctx, &b64.encode(k))
            })
        })
        .map_err(|e| anyhow::anyhow!("cannot load the session key: {e}"))?;
    let opened = enc
        .open(&ctx, &stored)
        .map_err(|e| anyhow::anyhow!("the stored session key {e}"))?;
    let bytes = b64
        .decode(opened.value)
        .map_err(|_| anyhow::anyhow!("stored session key is corrupt"))?;
    Key::try_from(bytes.as_slice()).map_err(|_| anyhow::anyhow!("stored session key is too short"))
}

/// Key reloads, pruning of expired marks, rate-limit cleanup; with Redis, the
/// revocation log's outbox; and, on their own beat, newly activated policy sets.
fn spawn_background(state: web::Data<AppState>) {
    if matches!(state.revocations, Revocations::Redis(_)) {
        spawn_revocation_sync(&state);
    }
    let weak = Arc::downgrade(&state.clone().into_inner());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(crate::policy::REFRESH_INTERVAL_MS));
        loop {
            tick.tick().await;
            let Some(state) = weak.upgrade() else { break };
            if let Err(e) = state.policy.refresh(&state.db).await {
                tracing::warn!(error = %e, "could not check for a newly activated policy set");
            }
        }
    });
    let every = Duration::from_secs(state.settings.keys.refresh_interval_secs.max(1));
    let weak = Arc::downgrade(&state.clone().into_inner());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        let mut n: u64 = 0;
        loop {
            tick.tick().await;
            let Some(state) = weak.upgrade() else { break };
            if let Err(e) = state.keys.refresh().await {
                tracing::warn!(error = %e, "could not check for rotated keys");
            }
            let now = crate::clock::now();
            n += 1;
            if n.is_multiple_of(30) {
                state.client_auth.housekeeping();
                state.registry.purge();
                state.login_limits.housekeeping();
                state.authorize_limits.retain_recent();
                if let Err(e) = state.db.prune_expired(now - 60).await {
                    tracing::warn!(error = %e, "pruning expired marks failed");
                }
                if let Some(days) = state.settings.audit.retention_days {
                    let before = now - i64::from(days) * 86_400;
                    match state
                        .db
                        .run(move |c| crate::storage::audit::delete_before(c, before, 10_000))
                        .await
                    {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(events = n, days, "audit events past retention deleted"),
                        Err(e) => tracing::warn!(error = %e, "pruning the audit log failed"),
                    }
                }
            }
        }
    });
}

/// Every instance, every [`crate::revocation::HEAD_POLL`]: reads the revocation
/// log's head (so that it trusts Redis only as far as Redis has applied it) and
/// drains the log into Redis when Redis is behind.
fn spawn_revocation_sync(state: &web::Data<AppState>) {
    let weak = Arc::downgrade(&state.clone().into_inner());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(crate::revocation::HEAD_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(state) = weak.upgrade() else { break };
            if let Revocations::Redis(r) = &state.revocations {
                r.sync_tick().await;
            }
        }
    });
}
