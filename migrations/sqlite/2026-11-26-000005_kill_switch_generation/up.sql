-- An agent's kill switch stays set while it is suspended (the end of time,
-- i64::MAX) and is lowered to the resume time on resume. Each change bumps a
-- generation, so that copies to Redis made from an older read never overwrite
-- a newer change (Redis keeps "generation:time" and only accepts newer ones).
ALTER TABLE agent_revocations ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;

-- Bring agents suspended before this change, or registered suspended, in line.
UPDATE agent_revocations SET revoked_before = 9223372036854775807, generation = generation + 1
    WHERE agent_id IN (SELECT agent_id FROM agents WHERE status = 'suspended');
INSERT INTO agent_revocations (agent_id, revoked_before, generation)
    SELECT agent_id, 9223372036854775807, 1 FROM agents
    WHERE status = 'suspended' AND agent_id NOT IN (SELECT agent_id FROM agent_revocations);
