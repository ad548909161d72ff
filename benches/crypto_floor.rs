//! The cryptographic floor of a token endpoint on this machine: what one ES256
//! signature (and one verification) of a realistic RFC 9068 access token costs
//! with the same library Deputy uses (josekit over OpenSSL), on one core.
//!
//! Run pinned, as benches/run.sh does:
//!     taskset -c 0 cargo bench --bench crypto_floor
//!
//! The key, the signer and the verifier are built once (building one from a JWK
//! costs more than a signature). Each timed op is the whole JWT step: for
//! signing, build the claims, serialize, base64url and sign; for verification,
//! split, decode and check the signature (claims checks are not included).
//!
//! Env: CRYPTO_FLOOR_ROUNDS (default 5), CRYPTO_FLOOR_N (ops per round, default 2000).
//! Prints human-readable lines, then machine-readable `key=value` lines:
//!     es256_sign_us=35.1
//!     es256_verify_us=92.8
//! (median of the rounds' mean per-op time) plus ops/s and min/max.

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

use josekit::jwk::alg::ec::{EcCurve, EcKeyPair};
use josekit::jwk::KeyPair;
use josekit::jws::{JwsHeader, ES256};
use josekit::jwt::{self, JwtPayload};
use josekit::Value;

const ISSUER: &str = "http://127.0.0.1:8080";
const AUDIENCE: &str = "https://api.example.com";
const CLIENT_ID: &str = "bench";
const KID: &str = "bench-es256-2026";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|&v| v > 0)
        .unwrap_or(default)
}

fn header() -> JwsHeader {
    let mut h = JwsHeader::new();
    h.set_token_type("at+jwt");
    h.set_key_id(KID);
    h
}

/// An RFC 9068 access-token payload as a client_credentials grant would mint it.
fn payload(seq: u64) -> JwtPayload {
    let now = SystemTime::now();
    let mut p = JwtPayload::new();
    p.set_issuer(ISSUER);
    p.set_subject(CLIENT_ID);
    p.set_audience(vec![AUDIENCE]);
    p.set_issued_at(&now);
    p.set_expires_at(&(now + Duration::from_secs(3600)));
    p.set_jwt_id(format!("{seq:016x}-5f0c1d8e9a7b4c3d"));
    p.set_claim("client_id", Some(Value::String(CLIENT_ID.to_owned())))
        .expect("client_id claim");
    p.set_claim("scope", Some(Value::String("read write".to_owned())))
        .expect("scope claim");
    p
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() {
    let rounds = env_usize("CRYPTO_FLOOR_ROUNDS", 5);
    let n = env_usize("CRYPTO_FLOOR_N", 2000);

    // Key, signer and verifier: once.
    let key_pair = EcKeyPair::generate(EcCurve::P256).expect("generate P-256 key");
    let mut private_jwk = key_pair.to_jwk_private_key();
    private_jwk.set_key_id(KID);
    let mut public_jwk = key_pair.to_jwk_public_key();
    public_jwk.set_key_id(KID);
    let signer = ES256.signer_from_jwk(&private_jwk).expect("ES256 signer");
    let verifier = ES256.verifier_from_jwk(&public_jwk).expect("ES256 verifier");
    let header = header();

    // Warm-up, and a correctness check of what we time.
    let mut tokens: Vec<String> = Vec::with_capacity(n);
    for i in 0..n.min(200) {
        tokens.push(jwt::encode_with_signer(&payload(i as u64), &header, &signer).expect("sign"));
    }
    for t in &tokens {
        let (p, h) = jwt::decode_with_verifier(t, &verifier).expect("verify");
        assert_eq!(h.token_type(), Some("at+jwt"));
        assert_eq!(p.issuer(), Some(ISSUER));
    }
    let sample = tokens[0].clone();

    let mut sign_us = Vec::with_capacity(rounds);
    let mut verify_us = Vec::with_capacity(rounds);
    let mut seq = 1_000_000u64;
    for round in 1..=rounds {
        tokens.clear();
        let start = Instant::now();
        for _ in 0..n {
            seq += 1;
            let t = jwt::encode_with_signer(black_box(&payload(seq)), &header, &signer).expect("sign");
            tokens.push(t);
        }
        let s = start.elapsed().as_secs_f64() * 1e6 / n as f64;

        let start = Instant::now();
        for t in &tokens {
            let r = jwt::decode_with_verifier(black_box(t.as_str()), &verifier).expect("verify");
            black_box(r);
        }
        let v = start.elapsed().as_secs_f64() * 1e6 / n as f64;

        println!("round {round}/{rounds}: {n} ES256 signs {s:.2} µs/op, {n} verifies {v:.2} µs/op");
        sign_us.push(s);
        verify_us.push(v);
    }

    let min = |v: &[f64]| v.iter().cloned().fold(f64::INFINITY, f64::min);
    let max = |v: &[f64]| v.iter().cloned().fold(0.0, f64::max);
    let (s_min, s_max, v_min, v_max) = (min(&sign_us), max(&sign_us), min(&verify_us), max(&verify_us));
    let s = median(&mut sign_us);
    let v = median(&mut verify_us);

    println!(
        "ES256 access token ({} bytes, header typ at+jwt): sign {s:.2} µs ({:.0}/s), verify {v:.2} µs ({:.0}/s), median of {rounds} rounds of {n}",
        sample.len(),
        1e6 / s,
        1e6 / v
    );
    println!("es256_sign_us={s:.2}");
    println!("es256_verify_us={v:.2}");
    println!("es256_sign_ops_per_s={:.0}", 1e6 / s);
    println!("es256_verify_ops_per_s={:.0}", 1e6 / v);
    println!("es256_sign_us_min={s_min:.2}");
    println!("es256_sign_us_max={s_max:.2}");
    println!("es256_verify_us_min={v_min:.2}");
    println!("es256_verify_us_max={v_max:.2}");
    println!("es256_token_bytes={}", sample.len());
    println!("crypto_floor_rounds={rounds}");
    println!("crypto_floor_n={n}");
}
