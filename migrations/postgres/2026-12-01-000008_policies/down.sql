ALTER TABLE audit_events DROP COLUMN policy_version;
ALTER TABLE audit_events DROP COLUMN policy_ids;
ALTER TABLE users DROP COLUMN groups;
DROP TABLE policy_activations;
DROP TABLE policy_versions;
