//! Single-use secrets of the code flow: codes and refresh tokens are kept as
//! SHA-256 hashes, and PKCE (RFC 7636 §4.6) is checked in constant time.

use base64::Engine;
use sha2::Digest;

/// Codes and refresh tokens are stored as SHA-256 hashes (hex), never as given.
pub fn hash_code(code: &str) -> String {
    let d = sha2::Sha256::digest(code.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 7636 §4.6: BASE64URL(SHA256(ASCII(code_verifier))) == code_challenge, compared in constant time.
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    use subtle::ConstantTimeEq;
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    computed.len() == challenge.len() && bool::from(computed.as_bytes().ct_eq(challenge.as_bytes()))
}

/// RFC 7636 §4.1: 43–128 characters of `[A-Z] [a-z] [0-9] - . _ ~`.
pub fn valid_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_the_rfc_7636_example() {
        // RFC 7636 Appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(valid_verifier(verifier));
        assert!(pkce_matches(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
        assert!(!pkce_matches(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"));
        assert!(!valid_verifier("short"));
    }
}
