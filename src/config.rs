//! One typed settings tree: defaults → TOML file → `DEPUTY_*` environment →
//! command-line flags, each overriding the one before. Validated at start.
//!
//! Unknown keys are refused, in the file and in the environment, with one
//! exception: Kubernetes injects `DEPUTY_SERVICE_HOST`, `DEPUTY_SERVICE_PORT*`,
//! `DEPUTY_PORT` and `DEPUTY_PORT_*` into every pod of a namespace with a
//! service named `deputy`. Those shapes are no setting of ours; they are
//! ignored (and `deputy` warns once that it did).

use std::net::SocketAddr;
use std::path::Path;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Address to listen on.
    pub listen: String,
    /// The issuer identifier (RFC 8414 §2): exactly what tokens and metadata carry.
    pub issuer: String,
    /// `postgres://…` for PostgreSQL; anything else is a SQLite file path.
    pub database_url: String,
    pub database_max_connections: u32,
    /// Optional Redis, the fast path for revocations shared between instances.
    pub redis_url: Option<String>,
    /// Prefix of every Redis key, so several deployments (or tests) can share one Redis.
    pub redis_prefix: String,
    /// Milliseconds a Redis command may take before the server falls back to the database.
    pub redis_timeout_ms: u64,
    /// HTTP worker threads; defaults to the number of cores.
    pub workers: Option<usize>,
    /// `text` or `json`.
    pub log_format: String,
    /// Bootstrap credential for the admin API (`Authorization: Bearer …`). Unset: only
    /// admin tokens are accepted there (`client_credentials`, audience `{issuer}/admin`,
    /// scope `deputy:admin`; see `admin`).
    pub admin_token: Option<String>,
    /// Key-encryption key (base64 of 32 random bytes) sealing the private signing keys and the
    /// cookie key in the database (AES-256-GCM). Unset: required with PostgreSQL; with SQLite, a
    /// key file beside the database (`<database>.kek`) is created on first start.
    pub key_encryption_key: Option<String>,
    /// Earlier key-encryption keys, still accepted for reading while `deputy keys rewrap`
    /// re-seals everything with the current one.
    pub previous_key_encryption_keys: Vec<String>,
    /// Authorization requests (`/authorize`) accepted per client address per minute.
    /// Each valid one is stored for ten minutes, so this bounds what one address
    /// can make the database hold.
    pub max_authorization_requests_per_minute_per_address: u32,
    pub tokens: TokenSettings,
    pub keys: KeySettings,
    pub client_auth: ClientAuthSettings,
    pub policy: PolicySettings,
    pub audit: AuditSettings,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSettings {
    /// Days an audit event is kept; older ones are deleted hourly by the server (export them
    /// first with `deputy audit export --until`). Unset: kept for ever.
    pub retention_days: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicySettings {
    /// IANA time zone in which policies see the time (`context.time`), daylight saving included.
    pub time_zone: String,
}

impl Default for PolicySettings {
    fn default() -> Self {
        PolicySettings {
            time_zone: "UTC".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenSettings {
    /// Default access-token lifetime in seconds (a client may set its own).
    pub access_token_ttl: i64,
    /// Server-wide ceiling no client setting can exceed.
    pub max_access_token_ttl: i64,
    /// Access tokens whose signature and claims were checked, remembered (by
    /// SHA-256) until they expire, so introspecting one again skips the
    /// signature check. Revocation is checked every time. 0 disables.
    pub verified_cache_entries: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeySettings {
    /// How often a running server looks for rotated keys in the database.
    pub refresh_interval_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientAuthSettings {
    /// How long a verified client secret is remembered (as a keyed hash, in memory only)
    /// so that a busy client does not pay argon2id on every request.
    pub secret_cache_ttl_secs: u64,
    /// Argon2id verifications allowed per client id per minute; beyond it, refused for a while.
    pub max_secret_verifications_per_minute: u32,
    /// Failed client authentications (that cost an argon2id verification) accepted per
    /// source address per minute; beyond it, that address's secrets are not verified
    /// until the minute ends (cached ones still pass).
    pub max_failed_authentications_per_minute_per_address: u32,
    /// The same, for all addresses together.
    pub max_failed_authentications_per_minute: u32,
    /// Argon2id verifications (client secrets and sign-ins) run at once; defaults to the
    /// number of cores.
    pub argon2_workers: Option<usize>,
    /// Verifications that may wait for a worker; defaults to twice the workers. Beyond
    /// it, the request is answered 503 `temporarily_unavailable` with `Retry-After`.
    pub argon2_queue: Option<usize>,
    /// Longest lifetime accepted for a `private_key_jwt` assertion, in seconds (its
    /// `jti` is remembered until it expires).
    pub max_assertion_lifetime_secs: i64,
    /// How long a client registration read from the database is reused, in milliseconds
    /// (0 disables). Changes made by the CLI or another instance take effect within it.
    pub client_cache_ttl_ms: u64,
}

impl ClientAuthSettings {
    /// Argon2id workers and queue length, with their defaults applied.
    pub fn argon2_pool_size(&self) -> (usize, usize) {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let workers = self.argon2_workers.unwrap_or(cores).max(1);
        (workers, self.argon2_queue.unwrap_or(2 * workers))
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: "127.0.0.1:8080".into(),
            issuer: "http://127.0.0.1:8080".into(),
            database_url: "deputy.db".into(),
            database_max_connections: 8,
            redis_url: None,
            redis_prefix: "deputy:".into(),
            redis_timeout_ms: 250,
            workers: None,
            log_format: "text".into(),
            admin_token: None,
            key_encryption_key: None,
            previous_key_encryption_keys: Vec::new(),
            max_authorization_requests_per_minute_per_address: 120,
            tokens: TokenSettings::default(),
            keys: KeySettings::default(),
            client_auth: ClientAuthSettings::default(),
            policy: PolicySettings::default(),
            audit: AuditSettings::default(),
        }
    }
}

impl Default for TokenSettings {
    fn default() -> Self {
        TokenSettings {
            access_token_ttl: 600,
            max_access_token_ttl: 3600,
            verified_cache_entries: 100_000,
        }
    }
}

impl Default for KeySettings {
    fn default() -> Self {
        KeySettings {
            refresh_interval_secs: 10,
        }
    }
}

impl Default for ClientAuthSettings {
    fn default() -> Self {
        ClientAuthSettings {
            secret_cache_ttl_secs: 600,
            max_secret_verifications_per_minute: 20,
            max_failed_authentications_per_minute_per_address: 30,
            max_failed_authentications_per_minute: 1200,
            argon2_workers: None,
            argon2_queue: None,
            max_assertion_lifetime_secs: 3600,
            client_cache_ttl_ms: 1000,
        }
    }
}

/// Flags given on the command line; `None` leaves the lower layers in force.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_url: Option<String>,
}

/// True for a `DEPUTY_`-stripped variable name of the shapes Kubernetes injects
/// for a service named `deputy`: `SERVICE_HOST`, `SERVICE_PORT`, `SERVICE_PORT_<name>`,
/// `PORT`, `PORT_<port>_<proto>`, `PORT_<port>_<proto>_{PROTO,PORT,ADDR}`.
pub fn is_kubernetes_service_variable(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k == "port"
        || k.starts_with("port_")
        || k == "service_host"
        || k == "service_port"
        || k.starts_with("service_port_")
}

/// The environment variables [`Settings::load`] ignored as Kubernetes service
/// variables, to warn about once logging is up.
pub fn ignored_environment() -> Vec<String> {
    std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| k.strip_prefix("DEPUTY_").is_some_and(is_kubernetes_service_variable))
        .collect()
}

impl Settings {
    /// Loads the layers in order and validates the result.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Settings> {
        let mut fig = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(path) = file {
            if !path.exists() {
                anyhow::bail!("configuration file {} does not exist", path.display());
            }
            fig = fig.merge(Toml::file(path));
        }
        let settings: Settings = fig
            .merge(
                Env::prefixed("DEPUTY_")
                    .ignore(&["config"])
                    .filter(|k| !is_kubernetes_service_variable(k.as_str()))
                    .split("__"),
            )
            .merge(Serialized::defaults(overrides))
            .extract()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        settings.validate()?;
        Ok(settings)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        self.listen
            .parse::<SocketAddr>()
            .map_err(|_| anyhow::anyhow!("listen {:?} is not an address like 127.0.0.1:8080", self.listen))?;
        let url =
            url::Url::parse(&self.issuer).map_err(|_| anyhow::anyhow!("issuer {:?} is not a URL", self.issuer))?;
        let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
        // RFC 8414 §2: https, no query, no fragment. Plain http only on loopback, for development.
        if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
            anyhow::bail!("issuer must use https (http is allowed on localhost only)");
        }
        if url.query().is_some() || url.fragment().is_some() || self.issuer.ends_with('/') {
            anyhow::bail!("issuer must have no query, fragment or trailing slash");
        }
        if url.path() != "/" {
            anyhow::bail!("issuer with a path is not supported yet: serve Deputy at the root of its host");
        }
        if self.tokens.access_token_ttl <= 0 || self.tokens.max_access_token_ttl < self.tokens.access_token_ttl {
            anyhow::bail!("tokens.access_token_ttl must be positive and not above tokens.max_access_token_ttl");
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            anyhow::bail!("log_format must be \"text\" or \"json\"");
        }
        if self.admin_token.as_ref().is_some_and(|t| t.len() < 32) {
            anyhow::bail!("admin_token must be at least 32 characters");
        }
        if jiff::tz::TimeZone::get(&self.policy.time_zone).is_err() {
            anyhow::bail!(
                "policy.time_zone {:?} is not an IANA time zone such as Europe/Berlin",
                self.policy.time_zone
            );
        }
        if self.database_max_connections == 0 {
            anyhow::bail!("database_max_connections must be at least 1");
        }
        Ok(())
    }

    pub fn is_https(&self) -> bool {
        self.issuer.starts_with("https://")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    // figment's Jail dictates the closure's (large) error type.
    #[allow(clippy::result_large_err)]
    fn kubernetes_service_variables_are_ignored_and_other_unknown_ones_refused() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("DEPUTY_SERVICE_HOST", "10.0.0.7");
            jail.set_env("DEPUTY_SERVICE_PORT", "8080");
            jail.set_env("DEPUTY_SERVICE_PORT_HTTP", "8080");
            jail.set_env("DEPUTY_PORT", "tcp://10.0.0.7:8080");
            jail.set_env("DEPUTY_PORT_8080_TCP", "tcp://10.0.0.7:8080");
            jail.set_env("DEPUTY_PORT_8080_TCP_PROTO", "tcp");
            jail.set_env("DEPUTY_PORT_8080_TCP_PORT", "8080");
            jail.set_env("DEPUTY_PORT_8080_TCP_ADDR", "10.0.0.7");
            jail.set_env("DEPUTY_LOG_FORMAT", "json");
            let s = Settings::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(s.log_format, "json", "real settings still apply");
            let mut ignored = ignored_environment();
            ignored.sort();
            assert_eq!(ignored.len(), 8, "{ignored:?}");
            assert!(!ignored.contains(&"DEPUTY_LOG_FORMAT".to_owned()));

            jail.set_env("DEPUTY_LISTEN_PORT", "8080");
            let err = Settings::load(None, &Overrides::default()).expect_err("unknown key refused");
            assert!(err.to_string().contains("listen_port"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn only_the_kubernetes_shapes_are_recognised() {
        for k in [
            "PORT",
            "port_8080_tcp",
            "SERVICE_HOST",
            "SERVICE_PORT",
            "SERVICE_PORT_HTTPS",
        ] {
            assert!(is_kubernetes_service_variable(k), "{k}");
        }
        for k in [
            "LISTEN",
            "REDIS_URL",
            "SERVICE",
            "SERVICE_NAME",
            "PORTS",
            "CLIENT_AUTH__PORT",
        ] {
            assert!(!is_kubernetes_service_variable(k), "{k}");
        }
    }
}
