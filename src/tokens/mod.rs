//! The only module that touches josekit: signing keys and their rotation,
//! access tokens (RFC 9068) and client assertions (RFC 7523). One validator per
//! token kind, each with its own `typ`, audience, issuer and keys (RFC 8725 §3.11).

pub mod access;
pub mod assertion;
pub mod at_rest;
pub mod id_token;
pub mod keys;

pub use keys::{Alg, KeySet, Keys};

/// Why a token was not accepted. Callers turn this into `active: false`,
/// `invalid_client` or `invalid_grant`; the text is for logs and descriptions.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("unknown signing key")]
    UnknownKey,
    #[error("bad signature or algorithm: {0}")]
    Signature(String),
    #[error("invalid claims: {0}")]
    Claims(String),
    #[error("token expired")]
    Expired,
}

/// Allowed clock skew for `iat`/`nbf` in the future (STANDARDS rule 7).
pub const CLOCK_SKEW_SECS: i64 = 10;

/// Longest compact JWS we accept anywhere; larger input is refused before parsing.
pub const MAX_JWT_LEN: usize = 8 * 1024;

/// Header parameters that would make a verifier fetch or trust key material
/// named by the token itself (RFC 8725 §3.10). Deputy never does; it refuses them.
pub(crate) fn refuse_embedded_keys(header: &josekit::jws::JwsHeader) -> Result<(), TokenError> {
    for name in ["jku", "x5u", "jwk", "x5c"] {
        if header.claim(name).is_some() {
            return Err(TokenError::Malformed(format!(
                "header parameter {name} is not accepted"
            )));
        }
    }
    Ok(())
}

pub(crate) use crate::clock::now;

/// A random identifier with 128 bits of entropy, base64url.
pub fn random_id() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}
