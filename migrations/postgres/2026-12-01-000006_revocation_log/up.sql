-- The revocation log: every revocation, consent withdrawal and kill-switch
-- change is a numbered row, committed in the same transaction as the change.
-- Redis is filled from it (by any instance) and records the highest number it
-- holds every mark up to; an instance trusts Redis only that far.
CREATE TABLE revocation_log (
    seq BIGINT PRIMARY KEY NOT NULL,
    -- 'jti' (a token), 'grant' (a consent grant), 'agent' (a kill switch)
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    -- when the mark may go (every token it covers has expired); agents: never
    expires_at BIGINT NOT NULL,
    -- agents only: the kill switch's generation and time (see agent_revocations)
    generation BIGINT NOT NULL,
    revoked_before BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX revocation_log_expires_at ON revocation_log (expires_at);

-- The last number handed out. Writers take it with an UPDATE, which holds the
-- row until they commit: numbers are given in commit order, with no gap a
-- reader could skip past while an earlier writer is still in flight.
CREATE TABLE revocation_log_head (
    id INTEGER PRIMARY KEY NOT NULL,
    seq BIGINT NOT NULL
);

-- What was revoked before the log existed starts it.
INSERT INTO revocation_log (seq, kind, subject, expires_at, generation, revoked_before, created_at)
SELECT ROW_NUMBER() OVER (ORDER BY kind, subject), kind, subject, expires_at, generation, revoked_before, created_at
FROM (
    SELECT 'jti' AS kind, jti AS subject, expires_at, 0 AS generation, 0 AS revoked_before, revoked_at AS created_at
        FROM revoked_tokens
    UNION ALL
    SELECT 'grant', grant_id, expires_at, 0, 0, revoked_at FROM revoked_grants
    UNION ALL
    SELECT 'agent', agent_id, 9223372036854775807, generation, revoked_before, 0 FROM agent_revocations
) AS existing;
INSERT INTO revocation_log_head (id, seq) SELECT 1, COUNT(*) FROM revocation_log;

-- A replayed code is marked, so that a redemption still in flight cannot
-- record (and hand out) tokens after the replay revoked what the code issued.
ALTER TABLE authorization_codes ADD COLUMN replayed BOOLEAN NOT NULL DEFAULT FALSE;
