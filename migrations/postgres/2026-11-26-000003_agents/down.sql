DROP TABLE audit_events;
ALTER TABLE grants DROP COLUMN agents;
DROP TABLE agent_revocations;
DROP TABLE agents;
