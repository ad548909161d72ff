//! Signing keys: generated on first start, stored in the database, rotated by
//! `deputy keys rotate`. A retired key stays published (and trusted for
//! verification) until every token it signed has expired.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use josekit::jwk::{Jwk, KeyPair};
use josekit::jws::{JwsHeader, JwsSigner, JwsVerifier, ES256, RS256};
use josekit::jwt::{self, JwtPayload};

use super::at_rest::KeyEncryption;
use super::{now, random_id, refuse_embedded_keys, TokenError, MAX_JWT_LEN};
use crate::storage::keys::{self as key_store, KeyRow};
use crate::storage::{Db, DbConnection, StorageError};

/// Algorithms Deputy signs with. ES256 is the default for access tokens; RS256
/// exists because OpenID Connect requires it for ID tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    ES256,
    RS256,
}

impl Alg {
    pub const ALL: [Alg; 2] = [Alg::ES256, Alg::RS256];

    pub fn as_str(self) -> &'static str {
        match self {
            Alg::ES256 => "ES256",
            Alg::RS256 => "RS256",
        }
    }

    pub fn parse(s: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

struct SigningKey {
    kid: String,
    signer: Box<dyn JwsSigner>,
}

/// An immutable snapshot of the keys: built once per change, shared by all requests
/// (building a signer or verifier from a JWK costs more than a signature).
pub struct KeySet {
    signing: HashMap<Alg, SigningKey>,
    verifiers: HashMap<String, (Alg, Box<dyn JwsVerifier>)>,
    jwks: serde_json::Value,
    fingerprint: (i64, Option<i64>, Option<i64>),
    /// When the first retired key stops being published: the set must be rebuilt then.
    next_expiry: Option<i64>,
}

impl KeySet {
    fn build(
        rows: &[KeyRow],
        fingerprint: (i64, Option<i64>, Option<i64>),
        enc: &KeyEncryption,
    ) -> Result<KeySet, TokenError> {
        let mut signing = HashMap::new();
        let mut verifiers: HashMap<String, (Alg, Box<dyn JwsVerifier>)> = HashMap::new();
        let mut public = Vec::new();
        // Rows come oldest first, so the newest active key of each algorithm wins.
        for row in rows {
            let alg =
                Alg::parse(&row.alg).ok_or_else(|| TokenError::Malformed(format!("stored key alg {}", row.alg)))?;
            let opened = enc
                .open(&key_context(&row.kid), &row.private_jwk)
                .map_err(|e| TokenError::Malformed(format!("stored key {} {e}", row.kid)))?;
            let jwk = Jwk::from_bytes(opened.value.as_bytes()).map_err(|e| TokenError::Malformed(e.to_string()))?;
            let bad = |e: josekit::JoseError| TokenError::Malformed(format!("stored key {}: {e}", row.kid));
            let (signer, verifier): (Box<dyn JwsSigner>, Box<dyn JwsVerifier>) = match alg {
                Alg::ES256 => (
                    Box::new(ES256.signer_from_jwk(&jwk).map_err(bad)?),
                    Box::new(ES256.verifier_from_jwk(&jwk).map_err(bad)?),
                ),
                Alg::RS256 => (
                    Box::new(RS256.signer_from_jwk(&jwk).map_err(bad)?),
                    Box::new(RS256.verifier_from_jwk(&jwk).map_err(bad)?),
                ),
            };
            let mut pubjwk = jwk.to_public_key().map_err(bad)?;
            pubjwk.set_key_id(row.kid.clone());
            pubjwk.set_algorithm(alg.as_str());
            pubjwk.set_key_use("sig");
            public.push(serde_json::Value::Object(pubjwk.as_ref().clone()));
            verifiers.insert(row.kid.clone(), (alg, verifier));
            if row.retired_at.is_none() {
                signing.insert(
                    alg,
                    SigningKey {
                        kid: row.kid.clone(),
                        signer,
                    },
                );
            }
        }
        let next_expiry = rows.iter().filter_map(|r| r.publish_until).min();
        Ok(KeySet {
            signing,
            verifiers,
            jwks: serde_json::json!({ "keys": public }),
            fingerprint,
            next_expiry,
        })
    }

    /// The JWK Set document served at `/jwks.json`.
    pub fn jwks(&self) -> &serde_json::Value {
        &self.jwks
    }

    /// Signs `claims` with the active key of `alg`, setting `typ` and `kid`.
    pub fn sign(
        &self,
        alg: Alg,
        typ: &str,
        claims: serde_json::Map<String, serde_json::Value>,
    ) -> Result<String, TokenError> {
        let key = self.signing.get(&alg).ok_or(TokenError::UnknownKey)?;
        let mut header = JwsHeader::new();
        header.set_token_type(typ);
        header.set_key_id(key.kid.clone());
        let payload = JwtPayload::from_map(claims).map_err(|e| TokenError::Claims(e.to_string()))?;
        jwt::encode_with_signer(&payload, &header, key.signer.as_ref())
            .map_err(|e| TokenError::Signature(e.to_string()))
    }

    /// Verifies the signature of a token Deputy signed with a key of `alg`: `kid`
    /// must name one of our keys of that algorithm (an access token signed with
    /// the ID-token key is refused), and the header `alg` must match. Claims are
    /// the caller's to check.
    pub fn verify(
        &self,
        token: &str,
        alg: Alg,
    ) -> Result<(serde_json::Map<String, serde_json::Value>, JwsHeader), TokenError> {
        if token.len() > MAX_JWT_LEN {
            return Err(TokenError::Malformed("token too long".into()));
        }
        let unknown_kid = std::cell::Cell::new(false);
        let (payload, header) = jwt::decode_with_verifier_selector(token, |header| {
            let verifier = header
                .key_id()
                .and_then(|kid| self.verifiers.get(kid))
                .filter(|(key_alg, _)| *key_alg == alg);
            unknown_kid.set(verifier.is_none());
            Ok(verifier.map(|(_, v)| v.as_ref()))
        })
        .map_err(|e| match e {
            _ if unknown_kid.get() => TokenError::UnknownKey,
            josekit::JoseError::InvalidSignature(e) => TokenError::Signature(e.to_string()),
            other => TokenError::Malformed(other.to_string()),
        })?;
        refuse_embedded_keys(&header)?;
        Ok((payload.claims_set().clone(), header))
    }

    pub fn has_kid(&self, kid: &str) -> bool {
        self.verifiers.contains_key(kid)
    }

    pub fn active_kid(&self, alg: Alg) -> Option<&str> {
        self.signing.get(&alg).map(|k| k.kid.as_str())
    }
}

/// The live key set of a running server, swapped when the database changes.
pub struct Keys {
    db: Db,
    enc: Arc<KeyEncryption>,
    current: RwLock<Arc<KeySet>>,
    last_forced: Mutex<Option<Instant>>,
}

impl Keys {
    /// Loads the keys, generating the missing ones on first start. Blocking: start-up only.
    /// Stored keys still in plaintext (from before sealing) or sealed with an
    /// earlier key-encryption key are re-sealed first.
    pub fn load_or_generate(db: Db, enc: Arc<KeyEncryption>) -> anyhow::Result<Keys> {
        let set = db
            .run_blocking(|c| {
                ensure_active_keys(c, now(), &enc)?;
                let resealed = rewrap(c, &enc)?;
                if resealed > 0 {
                    tracing::info!(
                        keys = resealed,
                        "signing keys re-sealed with the current key-encryption key"
                    );
                }
                load(c, &enc)
            })
            .map_err(|e| anyhow::anyhow!("cannot load signing keys: {e}"))?;
        Ok(Keys {
            db,
            enc,
            current: RwLock::new(Arc::new(set)),
            last_forced: Mutex::new(None),
        })
    }

    pub fn current(&self) -> Arc<KeySet> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reloads the key set if the table changed or a retired key's publication
    /// ended. Returns whether it did.
    pub async fn refresh(&self) -> Result<bool, StorageError> {
        let current = self.current();
        let known = current.fingerprint;
        let expired = current.next_expiry.is_some_and(|t| t <= now());
        let enc = self.enc.clone();
        let loaded = self
            .db
            .run(move |c| {
                if !expired && key_store::fingerprint(c)? == known {
                    return Ok(None);
                }
                load(c, &enc).map(Some)
            })
            .await?;
        let Some(set) = loaded else { return Ok(false) };
        match self.current.write() {
            Ok(mut g) => *g = Arc::new(set),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(set),
        }
        tracing::info!("signing keys reloaded");
        Ok(true)
    }

    /// Called when a token names a `kid` we do not know: another instance may
    /// have rotated. Reloads at most once a second, so junk `kid`s cost nothing.
    pub async fn refresh_for_unknown_kid(&self) -> bool {
        {
            let Ok(mut last) = self.last_forced.lock() else {
                return false;
            };
            if last.is_some_and(|t| t.elapsed().as_secs() < 1) {
                return false;
            }
            *last = Some(Instant::now());
        }
        self.refresh().await.unwrap_or(false)
    }
}

fn load(c: &mut DbConnection, enc: &KeyEncryption) -> Result<KeySet, StorageError> {
    let fingerprint = key_store::fingerprint(c)?;
    let rows = key_store::published(c, now())?;
    KeySet::build(&rows, fingerprint, enc).map_err(|e| StorageError::Corrupt(e.to_string()))
}

/// The associated data a key's sealed JWK is bound to.
fn key_context(kid: &str) -> String {
    format!("signing_key:{kid}")
}

/// Re-seals, with the current key-encryption key, every stored signing key and
/// server secret that is in plaintext or sealed with an earlier one. Returns how
/// many were re-sealed. Fails (changing nothing) if one cannot be opened.
pub fn rewrap(c: &mut DbConnection, enc: &KeyEncryption) -> Result<usize, StorageError> {
    use diesel::Connection;
    c.transaction(|c| {
        let mut n = 0;
        for row in key_store::all(c)? {
            let ctx = key_context(&row.kid);
            let opened = enc
                .open(&ctx, &row.private_jwk)
                .map_err(|e| StorageError::Corrupt(format!("signing key {} {e}", row.kid)))?;
            if opened.needs_rewrap {
                key_store::set_private(c, &row.kid, &enc.seal(&ctx, &opened.value))?;
                n += 1;
            }
        }
        for (name, value) in crate::storage::secrets::all(c)? {
            let ctx = secret_context(&name);
            let opened = enc
                .open(&ctx, &value)
                .map_err(|e| StorageError::Corrupt(format!("server secret {name} {e}")))?;
            if opened.needs_rewrap {
                crate::storage::secrets::set(c, &name, &enc.seal(&ctx, &opened.value))?;
                n += 1;
            }
        }
        Ok(n)
    })
}

/// The associated data a server secret is bound to.
pub fn secret_context(name: &str) -> String {
    format!("server_secret:{name}")
}

fn generate(alg: Alg, created_at: i64, enc: &KeyEncryption) -> Result<KeyRow, StorageError> {
    let err = |e: josekit::JoseError| StorageError::Query(format!("key generation failed: {e}"));
    let jwk = match alg {
        Alg::ES256 => ES256.generate_key_pair().map_err(err)?.to_jwk_key_pair(),
        Alg::RS256 => RS256.generate_key_pair(2048).map_err(err)?.to_jwk_key_pair(),
    };
    let kid = format!("{}-{}", alg.as_str().to_lowercase(), random_id());
    Ok(KeyRow {
        private_jwk: enc.seal(&key_context(&kid), &jwk.to_string()),
        kid,
        alg: alg.as_str().to_owned(),
        created_at,
        retired_at: None,
        publish_until: None,
    })
}

/// Generates a key for every algorithm that has no active one.
pub fn ensure_active_keys(c: &mut DbConnection, now: i64, enc: &KeyEncryption) -> Result<(), StorageError> {
    let rows = key_store::all(c)?;
    for alg in Alg::ALL {
        if !rows.iter().any(|r| r.alg == alg.as_str() && r.retired_at.is_none()) {
            key_store::insert(c, &generate(alg, now, enc)?)?;
            tracing::info!(alg = alg.as_str(), "generated a signing key");
        }
    }
    Ok(())
}

/// Makes a new key of each algorithm active; the old ones stay published for
/// `keep_published_secs` (the longest a token they signed can live, plus skew).
pub fn rotate(
    c: &mut DbConnection,
    now: i64,
    keep_published_secs: i64,
    enc: &KeyEncryption,
) -> Result<Vec<String>, StorageError> {
    use diesel::Connection;
    c.transaction(|c| {
        let mut kids = Vec::new();
        for alg in Alg::ALL {
            key_store::retire_active(c, alg.as_str(), now, now + keep_published_secs)?;
            // created_at + 1 keeps the new key the newest even within the same second.
            let row = generate(alg, now + 1, enc)?;
            kids.push(row.kid.clone());
            key_store::insert(c, &row)?;
        }
        Ok(kids)
    })
}

/// Verifies against the current keys, reloading once if the `kid` is new to us.
pub async fn verify_with_refresh(
    keys: &Keys,
    token: &str,
    alg: Alg,
) -> Result<(serde_json::Map<String, serde_json::Value>, JwsHeader), TokenError> {
    match keys.current().verify(token, alg) {
        Err(TokenError::UnknownKey) if keys.refresh_for_unknown_kid().await => keys.current().verify(token, alg),
        other => other,
    }
}
