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
        post_logout_redirect_uris -> Text,
        id_token_signed_response_alg -> Text,
        agents -> Text,
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

diesel::table! {
    users (user_id) {
        user_id -> Text,
        username -> Text,
        display_name -> Text,
        email -> Text,
        password_hash -> Text,
        disabled -> Bool,
        created_at -> BigInt,
        updated_at -> BigInt,
        groups -> Text,
    }
}

diesel::table! {
    sign_ins (id) {
        id -> Text,
        user_id -> Nullable<Text>,
        username -> Text,
        succeeded -> Bool,
        ip -> Text,
        user_agent -> Text,
        at -> BigInt,
    }
}

diesel::table! {
    auth_requests (request_id) {
        request_id -> Text,
        client_id -> Text,
        redirect_uri -> Text,
        scope -> Text,
        state -> Nullable<Text>,
        nonce -> Nullable<Text>,
        code_challenge -> Text,
        resource -> Nullable<Text>,
        prompt -> Nullable<Text>,
        max_age -> Nullable<BigInt>,
        login_hint -> Nullable<Text>,
        user_id -> Nullable<Text>,
        created_at -> BigInt,
        expires_at -> BigInt,
        completed -> Bool,
        requested_actor -> Nullable<Text>,
        authorization_details -> Nullable<Text>,
    }
}

diesel::table! {
    grants (grant_id) {
        grant_id -> Text,
        user_id -> Text,
        client_id -> Text,
        scope -> Text,
        resources -> Text,
        status -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
        agents -> Text,
        authorization_details -> Nullable<Text>,
    }
}

diesel::table! {
    authorization_codes (code_hash) {
        code_hash -> Text,
        client_id -> Text,
        user_id -> Text,
        grant_id -> Text,
        redirect_uri -> Text,
        scope -> Text,
        resource -> Nullable<Text>,
        nonce -> Nullable<Text>,
        code_challenge -> Text,
        auth_time -> BigInt,
        expires_at -> BigInt,
        used -> Bool,
        access_jti -> Nullable<Text>,
        refresh_family -> Nullable<Text>,
        may_act -> Nullable<Text>,
        authorization_details -> Nullable<Text>,
        replayed -> Bool,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Text,
        family_id -> Text,
        grant_id -> Text,
        client_id -> Text,
        user_id -> Text,
        scope -> Text,
        resource -> Nullable<Text>,
        auth_time -> BigInt,
        access_jti -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        used -> Bool,
        revoked -> Bool,
        may_act -> Nullable<Text>,
        authorization_details -> Nullable<Text>,
    }
}

diesel::table! {
    revoked_grants (grant_id) {
        grant_id -> Text,
        revoked_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    server_secrets (name) {
        name -> Text,
        value -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    agents (agent_id) {
        agent_id -> Text,
        client_id -> Text,
        name -> Text,
        description -> Text,
        publisher -> Text,
        homepage -> Nullable<Text>,
        status -> Text,
        jwks -> Nullable<Text>,
        allowed_scopes -> Text,
        allowed_audiences -> Text,
        max_token_ttl -> BigInt,
        max_delegation_depth -> BigInt,
        may_delegate_to -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    agent_revocations (agent_id) {
        agent_id -> Text,
        revoked_before -> BigInt,
        generation -> BigInt,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Text,
        at -> BigInt,
        request_id -> Nullable<Text>,
        event -> Text,
        decision -> Text,
        reason -> Nullable<Text>,
        agent_id -> Nullable<Text>,
        chain -> Nullable<Text>,
        user_id -> Nullable<Text>,
        client_id -> Nullable<Text>,
        scope -> Nullable<Text>,
        audience -> Nullable<Text>,
        authorization_details -> Nullable<Text>,
        grant_id -> Nullable<Text>,
        seq -> BigInt,
        policy_ids -> Nullable<Text>,
        policy_version -> Nullable<BigInt>,
    }
}

diesel::table! {
    policy_versions (version) {
        version -> BigInt,
        source -> Text,
        default_deny -> Bool,
        comment -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    policy_activations (seq) {
        seq -> BigInt,
        version -> BigInt,
        activated_at -> BigInt,
    }
}

diesel::table! {
    revocation_log (seq) {
        seq -> BigInt,
        kind -> Text,
        subject -> Text,
        expires_at -> BigInt,
        generation -> BigInt,
        revoked_before -> BigInt,
        created_at -> BigInt,
    }
}

diesel::table! {
    revocation_log_head (id) {
        id -> Integer,
        seq -> BigInt,
    }
}

diesel::table! {
    kill_switches (kind, subject) {
        kind -> Text,
        subject -> Text,
        revoked_before -> BigInt,
        generation -> BigInt,
    }
}

diesel::table! {
    sessions (id_hash) {
        id_hash -> Text,
        user_id -> Text,
        created_at -> BigInt,
        last_seen_at -> BigInt,
        ip -> Text,
        user_agent -> Text,
        ended_at -> Nullable<BigInt>,
    }
}
