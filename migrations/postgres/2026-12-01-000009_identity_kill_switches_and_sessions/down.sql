DROP TABLE sessions;
DELETE FROM revocation_log WHERE kind IN ('user', 'client');
DROP TABLE kill_switches;
