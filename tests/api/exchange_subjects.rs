//! Only a token Deputy itself issued, intact, may be a token exchange's subject:
//! a user's token re-signed by another issuer's key (unknown `kid`, or Deputy's
//! `kid` forged), signed by Deputy's key but naming another issuer, or of another
//! `typ`, is refused with RFC 8693 §2.2.2 `invalid_request`, while the genuine
//! token, in the same world, is exchanged.

use josekit::jws::{JwsHeader, ES256};
use serde_json::{Map, Value};

use crate::helpers::RedisChoice;
use crate::introspection::sign;
use crate::token_exchange::{alice_token_for_planner, exchange, world, PLANNER};

/// Signs `claims` with a fresh ES256 key that Deputy has never seen, under `kid`.
fn foreign_signed(claims: &Map<String, Value>, kid: &str) -> String {
    let key = ES256.generate_key_pair().expect("key").to_jwk_private_key();
    let signer = ES256.signer_from_jwk(&key).expect("signer");
    let mut header = JwsHeader::new();
    header.set_token_type("at+jwt");
    header.set_key_id(kid);
    let payload = serde_json::to_vec(claims).expect("json");
    josekit::jws::serialize_compact(&payload, &header, &signer).expect("signed")
}

#[tokio::test]
async fn subject_tokens_from_another_issuer_or_key_are_refused() {
    let w = world(RedisChoice::Off).await;
    let user_token = alice_token_for_planner(&w).await;
    let (header, claims) = crate::helpers::verify_with_jwks(&w.app, &user_token).await;
    let Value::Object(claims) = claims else {
        panic!("claims are an object")
    };
    let deputy_kid = header["kid"].as_str().expect("kid").to_owned();
    let mut other_issuer = claims.clone();
    other_issuer.insert("iss".into(), "https://idp.elsewhere.example".into());

    let cases = [
        (
            "signed by a foreign key with an unknown kid",
            foreign_signed(&claims, "elsewhere-1"),
        ),
        (
            "signed by a foreign key under Deputy's kid",
            foreign_signed(&claims, &deputy_kid),
        ),
        (
            "signed by Deputy's key, naming another issuer",
            sign(&w.app, "at+jwt", other_issuer),
        ),
        (
            "signed by Deputy's key, typ JWT instead of at+jwt",
            sign(&w.app, "JWT", claims.clone()),
        ),
    ];
    for (what, subject) in &cases {
        let r = exchange(&w, PLANNER, &w.planner, subject, &[]).await;
        assert_eq!((r.status, r.error()), (400, "invalid_request"), "{what}: {:?}", r.body);
        assert!(
            r.body["error_description"]
                .as_str()
                .unwrap_or("")
                .contains("subject_token"),
            "{what}: {:?}",
            r.body
        );
    }
    // The genuine token, in the same world, is exchanged: the refusals were about the subject.
    let r = exchange(&w, PLANNER, &w.planner, &user_token, &[]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}
