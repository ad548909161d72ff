-- RFC 9396: the transaction details a client asks for at /authorize, what the
-- user approved of them (the consent grant), and what each code and refresh
-- token carries into the access tokens it issues.
ALTER TABLE auth_requests ADD COLUMN authorization_details TEXT;
ALTER TABLE grants ADD COLUMN authorization_details TEXT;
ALTER TABLE authorization_codes ADD COLUMN authorization_details TEXT;
ALTER TABLE refresh_tokens ADD COLUMN authorization_details TEXT;
