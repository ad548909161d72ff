-- Agents: first-class identities with their own credentials and ceilings, each
-- acting at the token endpoint through one linked OAuth client.
CREATE TABLE agents (
    agent_id TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    publisher TEXT NOT NULL,
    homepage TEXT,
    status TEXT NOT NULL,
    jwks TEXT,
    allowed_scopes TEXT NOT NULL,
    allowed_audiences TEXT NOT NULL,
    max_token_ttl BIGINT NOT NULL,
    max_delegation_depth BIGINT NOT NULL,
    may_delegate_to TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Suspending an agent revokes every token issued (iat) at or before this time
-- that names the agent anywhere in its delegation chain.
CREATE TABLE agent_revocations (
    agent_id TEXT PRIMARY KEY NOT NULL,
    revoked_before BIGINT NOT NULL
);

-- Agents a user approved to act with a grant (RFC 8693 §4.4 may_act).
ALTER TABLE grants ADD COLUMN agents TEXT NOT NULL DEFAULT '[]';

-- Append-only record of every decision.
CREATE TABLE audit_events (
    id TEXT PRIMARY KEY NOT NULL,
    at BIGINT NOT NULL,
    request_id TEXT,
    event TEXT NOT NULL,
    decision TEXT NOT NULL,
    reason TEXT,
    agent_id TEXT,
    chain TEXT,
    user_id TEXT,
    client_id TEXT,
    scope TEXT,
    audience TEXT,
    authorization_details TEXT,
    grant_id TEXT,
    seq BIGINT NOT NULL
);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_agent ON audit_events (agent_id, at);
CREATE INDEX audit_events_user ON audit_events (user_id, at);
CREATE INDEX audit_events_seq ON audit_events (seq);
