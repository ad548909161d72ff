-- wrk script: OAuth 2.0 client_credentials at the token endpoint, client_secret_basic.
-- Env: BENCH_CLIENT_ID, BENCH_CLIENT_SECRET, BENCH_SCOPE (read), BENCH_RESOURCE
-- (https://api.example.com), BENCH_PATH (/token), BENCH_WRK_DIR (dir of common.lua).
-- Errors: wrk's "Non-2xx or 3xx responses" (status >= 400), socket errors, and
-- 2xx responses without an access_token (bad_bodies).
local C = dofile((os.getenv("BENCH_WRK_DIR") or "benches/wrk") .. "/common.lua")

bad_bodies = 0

wrk.method = "POST"
wrk.path = C.env("BENCH_PATH", "/token")
wrk.headers["Authorization"] = C.basic_auth()
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Accept"] = "application/json"
wrk.body = "grant_type=client_credentials"
  .. "&scope=" .. C.form_encode(C.env("BENCH_SCOPE", "read"))
  .. "&resource=" .. C.form_encode(C.env("BENCH_RESOURCE", "https://api.example.com"))

setup = C.setup

function response(status, headers, body)
  if status >= 200 and status < 300 and not body:find('"access_token"', 1, true) then
    bad_bodies = bad_bodies + 1
  end
end

function done(summary, latency, requests)
  C.done(summary, latency, "bad_bodies")
end
