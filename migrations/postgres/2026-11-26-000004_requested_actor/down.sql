ALTER TABLE refresh_tokens DROP COLUMN may_act;
ALTER TABLE authorization_codes DROP COLUMN may_act;
ALTER TABLE auth_requests DROP COLUMN requested_actor;
ALTER TABLE clients DROP COLUMN agents;
