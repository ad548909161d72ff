-- Cedar policy sets, versioned; the active one is the latest activation.
CREATE TABLE policy_versions (
    version BIGINT PRIMARY KEY NOT NULL,
    source TEXT NOT NULL,
    default_deny BOOLEAN NOT NULL,
    comment TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE policy_activations (
    seq BIGINT PRIMARY KEY NOT NULL,
    version BIGINT NOT NULL REFERENCES policy_versions(version),
    activated_at BIGINT NOT NULL
);
-- What an admin knows about a user that policies may use.
ALTER TABLE users ADD COLUMN groups TEXT NOT NULL DEFAULT '[]';
-- Attribution: which policies decided, under which active version.
ALTER TABLE audit_events ADD COLUMN policy_ids TEXT;
ALTER TABLE audit_events ADD COLUMN policy_version BIGINT;
