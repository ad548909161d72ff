//! Client assertions for `private_key_jwt` (RFC 7523 §3, OIDC Core §9): signed by
//! a key in the client's registered JWKS, `iss` = `sub` = the client, `aud` the
//! issuer as a string, a short `exp`, and a `jti` the caller must consume once.

use josekit::jwk::{Jwk, JwkSet};
use josekit::jws::{EdDSA, JwsVerifier, ES256, ES384, ES512, PS256, RS256};
use josekit::jwt;

use super::{refuse_embedded_keys, TokenError, CLOCK_SKEW_SECS, MAX_JWT_LEN};

/// Algorithms a client may sign assertions with. Never `none`, never HMAC.
pub const ALGS: &[&str] = &["ES256", "ES384", "ES512", "RS256", "PS256", "EdDSA"];

/// The key under which an assertion's `jti` is consumed (STANDARDS rule 3).
/// Client assertions and actor assertions share this one space: a JWT accepted
/// as one is refused as the other, whichever came first (both are "a signed
/// statement by `iss`", and one statement proves one thing once). The key is
/// the issuer and the `jti`; the assertion lives until its `exp`, and so does the mark.
pub fn replay_key(iss: &str, jti: &str) -> String {
    format!("assertion:{iss}:{jti}")
}

#[derive(Debug)]
pub struct Assertion {
    pub jti: String,
    pub exp: i64,
}

fn verifier_for(alg: &str, jwk: &Jwk) -> Option<Box<dyn JwsVerifier>> {
    let v: Box<dyn JwsVerifier> = match alg {
        "ES256" => Box::new(ES256.verifier_from_jwk(jwk).ok()?),
        "ES384" => Box::new(ES384.verifier_from_jwk(jwk).ok()?),
        "ES512" => Box::new(ES512.verifier_from_jwk(jwk).ok()?),
        "RS256" => Box::new(RS256.verifier_from_jwk(jwk).ok()?),
        "PS256" => Box::new(PS256.verifier_from_jwk(jwk).ok()?),
        "EdDSA" => Box::new(EdDSA.verifier_from_jwk(jwk).ok()?),
        _ => return None,
    };
    Some(v)
}

/// Checks a client assertion's signature and claims. `max_lifetime` bounds `exp - now`.
pub fn validate(
    assertion: &str,
    client_jwks: &serde_json::Value,
    client_id: &str,
    issuer: &str,
    now: i64,
    max_lifetime: i64,
) -> Result<Assertion, TokenError> {
    if assertion.len() > MAX_JWT_LEN {
        return Err(TokenError::Malformed("assertion too long".into()));
    }
    let set = match client_jwks {
        serde_json::Value::Object(m) => {
            JwkSet::from_map(m.clone()).map_err(|e| TokenError::Malformed(e.to_string()))?
        }
        _ => return Err(TokenError::UnknownKey),
    };
    let header = jwt::decode_header(assertion).map_err(|e| TokenError::Malformed(e.to_string()))?;
    let alg = header
        .claim("alg")
        .and_then(|a| a.as_str())
        .filter(|a| ALGS.contains(a))
        .ok_or_else(|| TokenError::Signature("assertion alg not allowed".into()))?
        .to_owned();
    let kid = header.claim("kid").and_then(|k| k.as_str()).map(str::to_owned);
    // With a kid, only that key; without one, any key of the client that fits the alg.
    let candidates: Vec<&Jwk> = match &kid {
        Some(k) => set.get(k),
        None => set.keys(),
    };
    let verifiers: Vec<Box<dyn JwsVerifier>> = candidates
        .into_iter()
        .filter(|j| j.algorithm().is_none_or(|a| a == alg))
        .filter_map(|j| {
            if kid.is_some() {
                return verifier_for(&alg, j);
            }
            // josekit's verifier demands the key's `kid` in the header; without a
            // header kid (allowed by OIDC Core §10.1), verify with the key minus its kid.
            let mut map = j.as_ref().clone();
            map.remove("kid");
            verifier_for(&alg, &Jwk::from_map(map).ok()?)
        })
        .collect();
    if verifiers.is_empty() {
        return Err(TokenError::UnknownKey);
    }
    let mut decoded = None;
    for v in &verifiers {
        if let Ok(ok) = jwt::decode_with_verifier(assertion, v.as_ref()) {
            decoded = Some(ok);
            break;
        }
    }
    let (payload, header) = decoded.ok_or_else(|| TokenError::Signature("assertion signature invalid".into()))?;
    refuse_embedded_keys(&header)?;
    // An access token or ID token must never pass as a client assertion.
    if let Some(typ) = header.token_type() {
        let t = typ.to_ascii_lowercase();
        if !matches!(
            t.as_str(),
            "jwt" | "client-authentication+jwt" | "application/client-authentication+jwt"
        ) {
            return Err(TokenError::Claims(format!("typ '{typ}' is not a client assertion")));
        }
    }
    let claims = payload.claims_set();
    let string = |name: &str| -> Result<&str, TokenError> {
        match claims.get(name) {
            Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(s),
            Some(_) => Err(TokenError::Claims(format!("{name} is not a non-empty string"))),
            None => Err(TokenError::Claims(format!("{name} is missing"))),
        }
    };
    let int = |name: &str| -> Result<Option<i64>, TokenError> {
        match claims.get(name) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| TokenError::Claims(format!("{name} is not an integer"))),
        }
    };
    if string("iss")? != client_id || string("sub")? != client_id {
        return Err(TokenError::Claims("iss and sub must both be the client_id".into()));
    }
    if string("aud")? != issuer {
        return Err(TokenError::Claims("aud must be the issuer, as a string".into()));
    }
    let jti = string("jti")?.to_owned();
    if jti.len() > 256 {
        return Err(TokenError::Claims("jti too long".into()));
    }
    let exp = int("exp")?.ok_or_else(|| TokenError::Claims("exp is missing".into()))?;
    if exp <= now {
        return Err(TokenError::Expired);
    }
    if exp - now > max_lifetime {
        return Err(TokenError::Claims(format!(
            "assertion lives longer than {max_lifetime} s"
        )));
    }
    if int("iat")?.is_some_and(|t| t > now + CLOCK_SKEW_SECS) || int("nbf")?.is_some_and(|t| t > now + CLOCK_SKEW_SECS)
    {
        return Err(TokenError::Claims("assertion is not valid yet".into()));
    }
    Ok(Assertion { jti, exp })
}
