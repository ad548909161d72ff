//! Table definitions, kept by hand in step with `migrations/{sqlite,postgres}`.

diesel::table! {
    clients (client_id) {
        client_id -> Text,
        client_name -> Text,
        secret_hash -> Nullable<Text>,
        redirect_uris -> Text,
        grant_types -> Text,
        scope -> Text,
        token_endpoint_auth_method -> Text,
        jwks -> Nullable<Text>,
        resources -> Text,
        access_token_ttl -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        alg -> Text,
        private_jwk -> Text,
        created_at -> BigInt,
        retired_at -> Nullable<BigInt>,
        publish_until -> Nullable<BigInt>,
    }
}

diesel::table! {
    revoked_tokens (jti) {
        jti -> Text,
        client_id -> Text,
        expires_at -> BigInt,
        revoked_at -> BigInt,
    }
}

diesel::table! {
    used_jtis (jti_key) {
        jti_key -> Text,
        expires_at -> BigInt,
    }
}
