ALTER TABLE refresh_tokens DROP COLUMN authorization_details;
ALTER TABLE authorization_codes DROP COLUMN authorization_details;
ALTER TABLE grants DROP COLUMN authorization_details;
ALTER TABLE auth_requests DROP COLUMN authorization_details;
