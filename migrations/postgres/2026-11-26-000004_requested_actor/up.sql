-- A third-party application may ask that a registered agent act with the
-- tokens the user approves for it (`requested_actor` at /authorize, after
-- draft-oauth-ai-agents-on-behalf-of-user); the client registration lists the
-- agents it may name, and the code and refresh token carry the one named, for
-- the access token's RFC 8693 §4.4 `may_act`.
ALTER TABLE clients ADD COLUMN agents TEXT NOT NULL DEFAULT '[]';
ALTER TABLE auth_requests ADD COLUMN requested_actor TEXT;
ALTER TABLE authorization_codes ADD COLUMN may_act TEXT;
ALTER TABLE refresh_tokens ADD COLUMN may_act TEXT;

-- An agent's kill switch now stays set while it is suspended (the end of time,
-- i64::MAX) and is lowered to the resume time on resume: bring agents suspended
-- before this change, or registered suspended, in line.
UPDATE agent_revocations SET revoked_before = 9223372036854775807
    WHERE agent_id IN (SELECT agent_id FROM agents WHERE status = 'suspended');
INSERT INTO agent_revocations (agent_id, revoked_before)
    SELECT agent_id, 9223372036854775807 FROM agents
    WHERE status = 'suspended' AND agent_id NOT IN (SELECT agent_id FROM agent_revocations);
