ALTER TABLE agent_revocations DROP COLUMN generation;
