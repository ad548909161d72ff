-- Kill switches for users (checked against a token's `sub`) and clients
-- (against its `client_id`), like agent_revocations: tokens naming the
-- subject issued at or before `revoked_before` are revoked (the end of time,
-- 9223372036854775807, while a user is disabled or a client deleted). Each
-- change bumps the generation; Redis keeps "generation:time" and only accepts
-- a newer one.
CREATE TABLE kill_switches (
    -- 'user' or 'client'
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    revoked_before BIGINT NOT NULL,
    generation BIGINT NOT NULL,
    PRIMARY KEY (kind, subject)
);

-- Users disabled before this change: their kill switch is set, and logged
-- for Redis.
INSERT INTO kill_switches (kind, subject, revoked_before, generation)
    SELECT 'user', user_id, 9223372036854775807, 1 FROM users WHERE disabled = 1;
INSERT INTO revocation_log (seq, kind, subject, expires_at, generation, revoked_before, created_at)
    SELECT (SELECT seq FROM revocation_log_head WHERE id = 1) + ROW_NUMBER() OVER (ORDER BY subject),
        'user', subject, 9223372036854775807, generation, revoked_before, 0
    FROM kill_switches;
UPDATE revocation_log_head SET seq = seq + (SELECT COUNT(*) FROM kill_switches) WHERE id = 1;

-- Browser sessions, server-side: the (encrypted) session cookie carries a
-- random session id; only its SHA-256 is stored. A session is good while its
-- row exists and is not ended.
CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    ip TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    ended_at BIGINT
);
CREATE INDEX sessions_user_id ON sessions (user_id);
