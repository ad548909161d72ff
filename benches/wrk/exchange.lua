-- wrk script: RFC 8693 token exchange at the token endpoint. The agent's client
-- authenticates with client_secret_basic; the subject is a user's token (from a
-- real browser-style consent), the actor the agent's own access token.
-- Env: BENCH_CLIENT_ID, BENCH_CLIENT_SECRET, BENCH_SUBJECT_FILE, BENCH_ACTOR_FILE,
-- BENCH_RESOURCE, BENCH_PATH (/token), BENCH_WRK_DIR.
local C = dofile((os.getenv("BENCH_WRK_DIR") or "benches/wrk") .. "/common.lua")

bad_bodies = 0

local function slurp(name)
  local f = assert(io.open(C.env(name, ""), "r"))
  local s = f:read("*a"):gsub("%s+$", "")
  f:close()
  return s
end

wrk.method = "POST"
wrk.path = C.env("BENCH_PATH", "/token")
wrk.headers["Authorization"] = C.basic_auth()
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "grant_type=" .. C.form_encode("urn:ietf:params:oauth:grant-type:token-exchange")
  .. "&subject_token=" .. C.form_encode(slurp("BENCH_SUBJECT_FILE"))
  .. "&subject_token_type=" .. C.form_encode("urn:ietf:params:oauth:token-type:access_token")
  .. "&actor_token=" .. C.form_encode(slurp("BENCH_ACTOR_FILE"))
  .. "&actor_token_type=" .. C.form_encode("urn:ietf:params:oauth:token-type:access_token")
  .. "&scope=read&resource=" .. C.form_encode(C.env("BENCH_RESOURCE", "https://api.example.com"))

setup = C.setup

function response(status, headers, body)
  if status >= 200 and status < 300 and not body:find('"access_token"', 1, true) then
    bad_bodies = bad_bodies + 1
  end
end

function done(summary, latency, requests)
  C.done(summary, latency, "bad_bodies")
end
