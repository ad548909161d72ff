-- Shared helpers for Deputy's wrk scripts (benches/run.sh). Loaded with dofile
-- from token.lua / introspect.lua; BENCH_WRK_DIR tells where this file lives.
local M = {}

local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

function M.base64(data)
  return ((data:gsub(".", function(x)
    local r, b = "", x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return b64chars:sub(c + 1, c + 1)
  end) .. ({ "", "==", "=" })[#data % 3 + 1])
end

-- application/x-www-form-urlencoded encoding of one value (RFC 6749 appendix B).
function M.form_encode(s)
  return (s:gsub("[^%w%-%._~]", function(c)
    if c == " " then return "+" end
    return string.format("%%%02X", c:byte())
  end))
end

function M.env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then return default end
  return v
end

-- HTTP Basic credentials per RFC 6749 section 2.3.1: form-encode id and secret, then base64.
function M.basic_auth()
  local id = M.env("BENCH_CLIENT_ID", "bench")
  local secret = M.env("BENCH_CLIENT_SECRET", "bench-secret-0123456789")
  return "Basic " .. M.base64(M.form_encode(id) .. ":" .. M.form_encode(secret))
end

-- Collect per-thread counters (each wrk thread has its own Lua state).
M.threads = {}

function M.setup(thread)
  table.insert(M.threads, thread)
end

-- One machine-readable line for run.sh, after wrk's own report.
function M.done(summary, latency, extra_name)
  local extra = 0
  for _, t in ipairs(M.threads) do extra = extra + (t:get(extra_name) or 0) end
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "WRK_RESULT requests=%d duration_s=%.3f rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
    "status_errors=%d socket_errors=%d connect_errors=%d read_errors=%d write_errors=%d timeouts=%d %s=%d\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.status, e.connect + e.read + e.write + e.timeout, e.connect, e.read, e.write, e.timeout,
    extra_name, extra))
end

return M
