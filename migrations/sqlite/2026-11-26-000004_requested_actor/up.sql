-- A third-party application may ask that a registered agent act with the
-- tokens the user approves for it (`requested_actor` at /authorize, after
-- draft-oauth-ai-agents-on-behalf-of-user); the client registration lists the
-- agents it may name, and the code and refresh token carry the one named, for
-- the access token's RFC 8693 §4.4 `may_act`.
ALTER TABLE clients ADD COLUMN agents TEXT NOT NULL DEFAULT '[]';
ALTER TABLE auth_requests ADD COLUMN requested_actor TEXT;
ALTER TABLE authorization_codes ADD COLUMN may_act TEXT;
ALTER TABLE refresh_tokens ADD COLUMN may_act TEXT;
