//! Client authentication at the token, introspection and revocation endpoints:
//! `client_secret_basic`, `client_secret_post` (RFC 6749 §2.3.1),
//! `private_key_jwt` (RFC 7523 §2.2, OIDC Core §9) and `none` (public clients).
//!
//! One method per request (RFC 6749 §2.3). Secrets are stored as argon2id
//! hashes. Since one verification costs ~20 ms, a verified secret is remembered
//! for a while as an HMAC under a per-process random key, in memory only: a
//! busy client pays argon2id once, and a reader of the database learns nothing
//! more. An unknown client costs the same as a known one.
//!
//! The work an attacker can cause is bounded (STANDARDS rule 11): verifications
//! run on a bounded pool with a short queue ([`crate::argon2_pool`]; beyond it,
//! 503 `temporarily_unavailable`); concurrent requests with the same client id
//! and secret share one verification (single flight), so a cold burst of a
//! client's requests costs one; verifications per client id, and failed
//! authentications per source address and in all ([`crate::auth_limits`]), are
//! limited. A cached (recently verified) secret is checked before any of that,
//! so it is never refused because of load.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::argon2_pool::{Argon2Pool, Busy};
use crate::auth_limits::{FailureLimits, Limited};
use crate::cache::TtlCache;
use crate::config::ClientAuthSettings;
use crate::domain::{AuthMethod, Client, ClientId};
use crate::error::OAuthError;
use crate::form::Form;
use crate::storage::{clients, jtis, Db};
use crate::tokens::assertion;

/// RFC 7523 §2.2 `client_assertion_type` for JWT bearer assertions.
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// What the request presented, before anything was checked.
#[derive(Debug)]
pub enum Credentials {
    Basic {
        client_id: String,
        secret: String,
    },
    Post {
        client_id: String,
        secret: String,
    },
    Jwt {
        client_id: Option<String>,
        assertion: String,
    },
    None {
        client_id: String,
    },
}

impl Credentials {
    pub fn method(&self) -> AuthMethod {
        match self {
            Credentials::Basic { .. } => AuthMethod::ClientSecretBasic,
            Credentials::Post { .. } => AuthMethod::ClientSecretPost,
            Credentials::Jwt { .. } => AuthMethod::PrivateKeyJwt,
            Credentials::None { .. } => AuthMethod::None,
        }
    }

    fn is_basic(&self) -> bool {
        matches!(self, Credentials::Basic { .. })
    }

    /// Reads the credentials from the `Authorization` header and the form,
    /// refusing requests that use more than one method.
    pub fn extract(authorization: Option<&str>, form: &Form) -> Result<Credentials, OAuthError> {
        let basic = authorization.map(parse_basic).transpose()?;
        let form_id = form.get("client_id");
        let secret = form.get("client_secret");
        let assertion = form.get("client_assertion");
        let assertion_type = form.get("client_assertion_type");
        let methods = [
            basic.is_some(),
            secret.is_some(),
            assertion.is_some() || assertion_type.is_some(),
        ];
        if methods.iter().filter(|m| **m).count() > 1 {
            return Err(OAuthError::InvalidRequest(
                "use exactly one client authentication method".into(),
            ));
        }
        if let Some((id, secret)) = basic {
            if form_id.is_some_and(|f| f != id) {
                return Err(OAuthError::InvalidRequest(
                    "client_id in the body differs from the Authorization header".into(),
                ));
            }
            return Ok(Credentials::Basic { client_id: id, secret });
        }
        if let Some(secret) = secret {
            let id = form_id.ok_or_else(|| OAuthError::InvalidRequest("client_secret without client_id".into()))?;
            return Ok(Credentials::Post {
                client_id: id.to_owned(),
                secret: secret.to_owned(),
            });
        }
        if assertion.is_some() || assertion_type.is_some() {
            if assertion_type != Some(JWT_BEARER_ASSERTION) {
                return Err(OAuthError::InvalidRequest(format!(
                    "client_assertion_type must be {JWT_BEARER_ASSERTION}"
                )));
            }
            let assertion =
                assertion.ok_or_else(|| OAuthError::InvalidRequest("client_assertion is missing".into()))?;
            return Ok(Credentials::Jwt {
                client_id: form_id.map(str::to_owned),
                assertion: assertion.to_owned(),
            });
        }
        match form_id {
            Some(id) => Ok(Credentials::None {
                client_id: id.to_owned(),
            }),
            None => Err(OAuthError::invalid_client("client authentication is required", false)),
        }
    }
}

/// RFC 6749 §2.3.1: `Basic base64(urlencode(id) ":" urlencode(secret))`.
fn parse_basic(header: &str) -> Result<(String, String), OAuthError> {
    let bad = || OAuthError::invalid_client("malformed HTTP Basic credentials", true);
    let (scheme, rest) = header.trim().split_once(' ').ok_or_else(bad)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::InvalidRequest(
            "only the Basic authorization scheme is accepted here".into(),
        ));
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let (id, secret) = raw.split_once(':').ok_or_else(bad)?;
    let dec = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| bad())
    };
    let (id, secret) = (dec(id)?, dec(secret)?);
    if id.is_empty() || secret.is_empty() {
        return Err(bad());
    }
    Ok((id, secret))
}

/// Hashes a client secret with argon2id and a random salt (PHC string).
pub fn hash_secret(secret: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Verifies a secret against a PHC string (constant-time inside argon2).
pub fn verify_secret(secret: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default().verify_password(secret.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// The argon2id hash (default parameters) of a random secret nobody kept. Unknown
/// clients and users are verified against it, so they cost what known ones do.
/// A constant, not computed at start: hashing at start would leave a 19 MiB
/// argon2 buffer in the heap of an idle server.
pub const DUMMY_PHC: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$gWGMSoPMewKHvBgIDobYNA$GEHW2xdsD1DVynts9WiRHy1DkOkcVEpDdK1uSs4KdUQ";

/// A random client secret: 256 bits, base64url.
pub fn generate_secret() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// What a verified secret leaves behind: its HMAC tag and the hash it matched.
#[derive(Clone)]
struct CachedSecret {
    tag: [u8; 32],
    phc: Arc<str>,
}

pub struct ClientAuthenticator {
    db: Db,
    pool: Arc<Argon2Pool>,
    failures: FailureLimits,
    issuer: String,
    settings: ClientAuthSettings,
    hmac_key: [u8; 32],
    verified: TtlCache<String, CachedSecret>,
    limiter: DefaultKeyedRateLimiter<String>,
    /// Registrations read recently, so a busy client costs no database round trip.
    /// Changes made elsewhere (CLI, another instance) are seen within `client_cache_ttl_ms`.
    clients: TtlCache<ClientId, Arc<Client>>,
    /// Verified against when the client is unknown, so timing does not tell.
    dummy_phc: String,
}

impl ClientAuthenticator {
    /// `failures` counts failed authentications (shared through Redis or not).
    pub fn new(
        db: Db,
        issuer: String,
        settings: ClientAuthSettings,
        pool: Arc<Argon2Pool>,
        failures: FailureLimits,
    ) -> anyhow::Result<Self> {
        use rand::RngCore;
        let mut hmac_key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut hmac_key);
        let per_minute =
            NonZeroU32::new(settings.max_secret_verifications_per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        let dummy_phc = DUMMY_PHC.to_owned();
        let clients = TtlCache::new(Duration::from_millis(settings.client_cache_ttl_ms));
        let verified = TtlCache::new(Duration::from_secs(settings.secret_cache_ttl_secs));
        Ok(ClientAuthenticator {
            db,
            pool,
            failures,
            issuer,
            settings,
            hmac_key,
            verified,
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
            clients,
            dummy_phc,
        })
    }

    /// Forgets rate-limit state of quiet clients; called periodically.
    pub fn housekeeping(&self) {
        self.limiter.retain_recent();
        self.verified.purge();
        self.clients.purge();
    }

    /// Authenticates the request's client and returns it. `source` is the
    /// address the request came from (failed authentications are limited per address).
    pub async fn authenticate(
        &self,
        creds: Credentials,
        source: Option<IpAddr>,
        now: i64,
    ) -> Result<Arc<Client>, OAuthError> {
        let basic = creds.is_basic();
        let unknown = || OAuthError::invalid_client("client authentication failed", basic);
        let raw_id = match &creds {
            Credentials::Basic { client_id, .. }
            | Credentials::Post { client_id, .. }
            | Credentials::None { client_id } => client_id.clone(),
            Credentials::Jwt {
                client_id: Some(id), ..
            } => id.clone(),
            Credentials::Jwt {
                client_id: None,
                assertion,
            } => unverified_sub(assertion).ok_or_else(unknown)?,
        };
        let id = ClientId::parse(&raw_id).map_err(|_| unknown())?;
        // A secret that would need verifying from an address (or a server) over its
        // failure limit, or while the argon2 pool is full, is refused before it
        // costs even a database read.
        if let Credentials::Basic { secret, .. } | Credentials::Post { secret, .. } = &creds {
            if !self.recently_verified(&id, secret) {
                if let Err(limited) = self.failures.check_shared(source).await {
                    return Err(refusal(limited, basic));
                }
                if !self.pool.can_accept(&party(&id), secret) {
                    return Err(OAuthError::TemporarilyUnavailable("the argon2 pool is full".into()));
                }
            }
        }
        let client = self.load_client(&id).await?;

        match (&creds, client) {
            (Credentials::Basic { secret, .. } | Credentials::Post { secret, .. }, client) => {
                let phc = client.as_ref().and_then(|c| c.secret_hash.clone());
                let ok = self.check_secret(&id, secret, phc.as_deref(), basic, source).await?;
                match client {
                    Some(c) if ok && c.auth_method == creds.method() => Ok(c),
                    Some(c) if ok => Err(OAuthError::invalid_client(
                        format!("this client is registered for {}", c.auth_method.as_str()),
                        basic,
                    )),
                    _ => Err(unknown()),
                }
            }
            (Credentials::Jwt { assertion, .. }, Some(c)) if c.auth_method == AuthMethod::PrivateKeyJwt => {
                let jwks = c.jwks.as_ref().ok_or_else(unknown)?;
                let a = assertion::validate(
                    assertion,
                    jwks,
                    id.as_str(),
                    &self.issuer,
                    now,
                    self.settings.max_assertion_lifetime_secs,
                )
                .map_err(|e| OAuthError::invalid_client(format!("client assertion refused: {e}"), false))?;
                // RFC 7523 §3 item 7: a jti is used once, in the space actor assertions
                // share (a JWT is never both); the insert is the atomic check.
                let key = assertion::replay_key(id.as_str(), &a.jti);
                let first = self.db.run(move |conn| jtis::consume(conn, &key, a.exp)).await?;
                if !first {
                    return Err(OAuthError::invalid_client(
                        "client assertion was already used (jti replay)",
                        false,
                    ));
                }
                Ok(c)
            }
            (Credentials::None { .. }, Some(c)) if c.auth_method == AuthMethod::None => Ok(c),
            (_, Some(c)) => Err(OAuthError::invalid_client(
                format!("this client is registered for {}", c.auth_method.as_str()),
                basic,
            )),
            (_, None) => Err(unknown()),
        }
    }

    /// The client's registration, from the short-lived cache (changes elsewhere
    /// are seen within `client_cache_ttl_ms`) or the database.
    pub async fn registration(&self, id: &ClientId) -> Result<Option<Arc<Client>>, OAuthError> {
        self.load_client(id).await
    }

    /// The client's registration, from the short-lived cache or the database.
    async fn load_client(&self, id: &ClientId) -> Result<Option<Arc<Client>>, OAuthError> {
        if let Some(c) = self.clients.get(id) {
            return Ok(Some(c));
        }
        let lookup = id.clone();
        let client = self.db.run(move |c| clients::get(c, &lookup)).await?.map(Arc::new);
        if let Some(c) = &client {
            self.clients.insert(id.clone(), Arc::clone(c));
        }
        Ok(client)
    }

    fn tag(&self, id: &ClientId, secret: &str) -> [u8; 32] {
        // HMAC keys of any length are accepted, so this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.hmac_key).expect("HMAC takes any key length");
        mac.update(id.as_str().as_bytes());
        mac.update(&[0]);
        mac.update(secret.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// True if `secret` matches `phc`; unknown clients (`phc` None) verify against a dummy.
    async fn check_secret(
        &self,
        id: &ClientId,
        secret: &str,
        phc: Option<&str>,
        basic: bool,
        source: Option<IpAddr>,
    ) -> Result<bool, OAuthError> {
        let tag = self.tag(id, secret);
        if let (Some(phc), Some(e)) = (phc, self.verified.get(&id.as_str().to_owned())) {
            if &*e.phc == phc && bool::from(e.tag.ct_eq(&tag)) {
                return Ok(true);
            }
        }
        let target = phc.unwrap_or(&self.dummy_phc);
        let verified = self
            .pool
            .verify_shared(&party(id), secret, target, || self.admit(id, source, basic))
            .await?;
        let ok = verified.is_ok_and(|ok| ok) && phc.is_some();
        if let (true, Some(phc)) = (ok, phc) {
            self.verified
                .insert(id.as_str().to_owned(), CachedSecret { tag, phc: phc.into() });
        }
        match verified {
            Err(Busy) => Err(OAuthError::TemporarilyUnavailable("the argon2 pool is full".into())),
            Ok(_) if !ok => {
                self.failures.record_failure_shared(source).await;
                Ok(false)
            }
            Ok(_) => Ok(true),
        }
    }

    /// May a new verification start for this client id from this address?
    fn admit(&self, id: &ClientId, source: Option<IpAddr>, basic: bool) -> Result<(), OAuthError> {
        if self.limiter.check_key(&id.as_str().to_owned()).is_err() {
            return Err(OAuthError::invalid_client(
                "too many authentication attempts for this client; retry in a minute",
                basic,
            ));
        }
        self.failures.check(source).map_err(|limited| refusal(limited, basic))
    }

    /// Is this (client id, secret) the one verified recently? (Its hash is compared
    /// again with the registration before it is trusted.)
    fn recently_verified(&self, id: &ClientId, secret: &str) -> bool {
        self.verified
            .get(&id.as_str().to_owned())
            .is_some_and(|e| bool::from(e.tag.ct_eq(&self.tag(id, secret))))
    }
}

/// The party a client secret is verified for (the single-flight key's prefix).
fn party(id: &ClientId) -> String {
    format!("client:{}", id.as_str())
}

fn refusal(limited: Limited, basic: bool) -> OAuthError {
    match limited {
        Limited::Source => OAuthError::invalid_client(
            "too many failed client authentications from this address; retry in a minute",
            basic,
        ),
        Limited::Global => OAuthError::TemporarilyUnavailable("too many failed client authentications overall".into()),
    }
}

/// The `sub` of an assertion, read before verification only to find the client
/// whose keys will then verify it.
fn unverified_sub(assertion: &str) -> Option<String> {
    let payload = assertion.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("sub")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(body: &str) -> Form {
        Form::parse(body.as_bytes()).expect("valid form")
    }

    #[test]
    fn basic_credentials_are_url_decoded() {
        let h = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("my%20app:p%3Aw+d")
        );
        match Credentials::extract(Some(&h), &form("")) {
            Ok(Credentials::Basic { client_id, secret }) => {
                assert_eq!(client_id, "my app");
                assert_eq!(secret, "p:w d");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn two_methods_in_one_request_are_refused() {
        let h = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("a:b"));
        let err = Credentials::extract(Some(&h), &form("client_id=a&client_secret=b")).expect_err("two methods");
        assert_eq!(err.code(), "invalid_request");
    }

    #[test]
    fn missing_credentials_are_invalid_client() {
        let err = Credentials::extract(None, &form("grant_type=client_credentials")).expect_err("none");
        assert_eq!(err.code(), "invalid_client");
    }

    #[test]
    fn the_dummy_hash_has_the_default_cost_so_unknown_clients_cost_the_same() {
        let real = hash_secret("x").expect("hash");
        let params = |h: &str| h.split('$').nth(3).map(str::to_owned);
        assert_eq!(params(DUMMY_PHC), params(&real));
        assert!(!verify_secret("", DUMMY_PHC));
    }

    #[test]
    fn secret_hash_verifies_only_the_right_secret() {
        let h = hash_secret("s3cret").expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_secret("s3cret", &h));
        assert!(!verify_secret("s3cret!", &h));
        assert!(!verify_secret("s3cret", "not a phc string"));
    }
}
