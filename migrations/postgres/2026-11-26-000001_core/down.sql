DROP TABLE used_jtis;
DROP TABLE revoked_tokens;
DROP TABLE signing_keys;
DROP TABLE clients;
