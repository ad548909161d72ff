ALTER TABLE authorization_codes DROP COLUMN replayed;
DROP TABLE revocation_log_head;
DROP TABLE revocation_log;
