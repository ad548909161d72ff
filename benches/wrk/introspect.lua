-- wrk script: RFC 7662 token introspection, client_secret_basic.
-- Env: BENCH_TOKEN (the token) or BENCH_TOKEN_FILE (a file holding it),
-- BENCH_CLIENT_ID, BENCH_CLIENT_SECRET, BENCH_PATH (/introspect), BENCH_WRK_DIR.
-- Errors: wrk's "Non-2xx or 3xx responses" (status >= 400), socket errors, and
-- 2xx responses not saying "active":true (bad_bodies).
local C = dofile((os.getenv("BENCH_WRK_DIR") or "benches/wrk") .. "/common.lua")

bad_bodies = 0

local token = C.env("BENCH_TOKEN", nil)
if token == nil then
  local path = C.env("BENCH_TOKEN_FILE", nil)
  if path == nil then error("introspect.lua: set BENCH_TOKEN or BENCH_TOKEN_FILE") end
  local f = assert(io.open(path, "r"))
  token = f:read("*a"):gsub("%s+", "")
  f:close()
end
if token == "" then error("introspect.lua: empty token") end

wrk.method = "POST"
wrk.path = C.env("BENCH_PATH", "/introspect")
wrk.headers["Authorization"] = C.basic_auth()
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Accept"] = "application/json"
wrk.body = "token=" .. C.form_encode(token) .. "&token_type_hint=access_token"

setup = C.setup

function response(status, headers, body)
  if status >= 200 and status < 300 and not body:gsub("%s", ""):find('"active":true', 1, true) then
    bad_bodies = bad_bodies + 1
  end
end

function done(summary, latency, requests)
  C.done(summary, latency, "bad_bodies")
end
