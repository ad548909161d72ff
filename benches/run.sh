#!/usr/bin/env bash
# Deputy's benchmark: one command, from the repository root or anywhere:
#
#     bash benches/run.sh
#
# Measures, on this machine, with the server pinned to one core (taskset -c 0)
# and wrk pinned to the other (taskset -c 1), only against 127.0.0.1:
#   - the ES256 floor: one signature and one verification of an RFC 9068 access
#     token with josekit (benches/crypto_floor.rs);
#   - Deputy: client_credentials (client_secret_basic) at /token and
#     introspection at /introspect, at concurrency 16 and 64: req/s, p50, p99,
#     errors (status >= 400, socket errors, 2xx with a wrong body), RSS idle and
#     peak under load, fraction of the ES256 sign (token) / verify (introspection) floor;
#   - node-oidc-provider (benches/peer) as the reference peer, same pinning, same
#     scripts; the Deputy/peer req/s ratio.
# Prints one markdown table and writes it to bench-out/results.md (raw wrk
# output and logs alongside, in bench-out/).
#
# Env (all optional):
#   BENCH_DURATION=10s       measured wrk run per scenario
#   BENCH_WARMUP=3s          wrk warm-up before each scenario (0 to skip)
#   BENCH_CONCURRENCY="16 64"
#   BENCH_SCENARIOS="token introspect exchange"   Deputy's scenarios to run
#   BENCH_SERVER_CPU=0 BENCH_LOAD_CPU=1
#   DEPUTY_BENCH_DB=postgres://...   run Deputy on PostgreSQL instead of a fresh SQLite file
#   BENCH_RUST_LOG=warn      RUST_LOG for Deputy (per-request logging would be measured too)
#   BENCH_SKIP_BUILD=1       use the existing target/release/deputy and skip cargo
#   BENCH_SKIP_CRYPTO=1 BENCH_SKIP_DEPUTY=1 BENCH_SKIP_PEER=1
#   BENCH_TIMEOUT=3600       hard limit for the whole run, in seconds (includes the release build)
#   BENCH_OUT=bench-out
set -euo pipefail

# The whole run is bounded: re-run this script under timeout(1) once.
if [[ -z "${_DEPUTY_BENCH_BOUNDED:-}" ]]; then
  export _DEPUTY_BENCH_BOUNDED=1
  exec timeout -k 15 "${BENCH_TIMEOUT:-3600}" bash "$0" "$@"
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

DURATION="${BENCH_DURATION:-10s}"
WARMUP="${BENCH_WARMUP:-3s}"
CONCURRENCY="${BENCH_CONCURRENCY:-16 64}"
SCENARIOS=" ${BENCH_SCENARIOS:-token introspect exchange} "
wants() { [[ "$SCENARIOS" == *" $1 "* ]]; }
SERVER_CPU="${BENCH_SERVER_CPU:-0}"
LOAD_CPU="${BENCH_LOAD_CPU:-1}"
OUT="${BENCH_OUT:-$ROOT/bench-out}"
BENCH_DB="${DEPUTY_BENCH_DB:-}"
# Deputy reads every DEPUTY_* variable as configuration and rejects unknown ones.
unset DEPUTY_BENCH_DB

HOST=127.0.0.1
CLIENT_ID="bench"
CLIENT_SECRET="bench-secret-0123456789"
SCOPE="read"
RESOURCE="https://api.example.com"
PEER_OPAQUE_RESOURCE="https://opaque.example.com"
WRK_DIR="$ROOT/benches/wrk"
DEPUTY_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/deputy"

mkdir -p "$OUT"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/deputy-bench.XXXXXX")"
RESULTS="$OUT/results.tsv"
: > "$RESULTS"

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- cleanup
PIDS=()
cleanup() {
  local rc=$?
  for pid in "${PIDS[@]:-}"; do
    [[ -n "$pid" ]] || continue
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  for pid in "${PIDS[@]:-}"; do
    [[ -n "$pid" ]] || continue
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- checks and installs
[[ "$(nproc --all)" -ge 2 ]] || log "warning: fewer than 2 cores; pinning server and load to the same core"
command -v taskset >/dev/null || die "taskset (util-linux) is required"
command -v curl >/dev/null || die "curl is required"
if ! command -v wrk >/dev/null; then
  log "installing wrk (apt-get)"
  { apt-get install -y -qq wrk || { apt-get update -qq && apt-get install -y -qq wrk; }; } >"$OUT/apt.log" 2>&1 \
    || die "could not install wrk; see $OUT/apt.log"
fi

if [[ -z "${BENCH_SKIP_PEER:-}" ]]; then
  command -v node >/dev/null || die "node is required for the reference peer (or set BENCH_SKIP_PEER=1)"
  if [[ ! -d "$ROOT/benches/peer/node_modules/oidc-provider" ]]; then
    log "installing the peer's node modules (npm ci)"
    (cd "$ROOT/benches/peer" && timeout 600 npm ci --no-audit --no-fund) >"$OUT/npm.log" 2>&1 \
      || die "npm ci failed; see $OUT/npm.log"
  fi
fi

# ---------------------------------------------------------------- build
if [[ -z "${BENCH_SKIP_BUILD:-}" ]]; then
  if [[ -z "${BENCH_SKIP_DEPUTY:-}" ]]; then
    log "cargo build --release (a clean build takes ~12 min on 2 cores; log: $OUT/build.log)"
    cargo build --release --locked > "$OUT/build.log" 2>&1 \
      || { tail -n 30 "$OUT/build.log" >&2; die "cargo build --release failed"; }
  fi
  if [[ -z "${BENCH_SKIP_CRYPTO:-}" ]]; then
    log "building the crypto floor bench (log: $OUT/build-bench.log)"
    cargo bench --locked --bench crypto_floor --no-run > "$OUT/build-bench.log" 2>&1 \
      || { tail -n 30 "$OUT/build-bench.log" >&2; die "building benches/crypto_floor.rs failed"; }
  fi
fi

# From here on this script and everything it starts (curl, RSS sampler, wrk) stay
# on the load core; the servers are started with their own taskset.
taskset -cp "$LOAD_CPU" $$ >/dev/null

# ---------------------------------------------------------------- helpers
free_port() {
  local p
  for _ in $(seq 1 100); do
    p=$(( 20000 + RANDOM % 40000 ))
    if ! (exec 3<>"/dev/tcp/$HOST/$p") 2>/dev/null; then
      echo "$p"; return 0
    fi
  done
  die "no free port found"
}

wait_healthy() { # url pid name
  local url=$1 pid=$2 name=$3
  for _ in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || die "$name exited before becoming healthy (see $OUT/$name.log)"
    if curl -fsS --max-time 1 "$url" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  die "$name not healthy at $url after 30 s (see $OUT/$name.log)"
}

proc_status_kb() { # pid field -> KiB (0 if gone); bash builtins only, no fork per sample
  local k v _u
  while read -r k v _u; do
    if [[ "$k" == "$2:" ]]; then echo "$v"; return 0; fi
  done < "/proc/$1/status" 2>/dev/null || true
  echo 0
}
rss_kb() { proc_status_kb "$1" VmRSS; }

# Samples VmRSS of $1 every 100 ms into $2 (max in KiB) until killed.
rss_sampler() {
  local pid=$1 out=$2 max=0 v
  while kill -0 "$pid" 2>/dev/null; do
    v=$(rss_kb "$pid"); v=${v:-0}
    if (( v > max )); then max=$v; echo "$max" > "$out"; fi
    sleep 0.1
  done
}

fmt_mib() { awk -v k="${1:-0}" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }

basic_auth() { # RFC 6749 2.3.1 (the bench credentials need no form-encoding)
  printf '%s:%s' "$CLIENT_ID" "$CLIENT_SECRET" | base64 -w0
}

get_token() { # base_url path resource -> prints the access token
  local body
  body=$(curl -sS --max-time 10 -X POST "$1$2" \
    -H "Authorization: Basic $(basic_auth)" \
    -H 'Content-Type: application/x-www-form-urlencoded' \
    --data-urlencode grant_type=client_credentials \
    --data-urlencode "scope=$SCOPE" \
    --data-urlencode "resource=$3") || die "token request to $1$2 failed"
  local tok
  tok=$(printf '%s' "$body" | sed -n 's/.*"access_token"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p')
  [[ -n "$tok" ]] || die "no access_token from $1$2: $body"
  printf '%s' "$tok"
}

# The authorization code flow as a browser does it (cookies, CSRF tokens, 303s),
# the bench user approving the bench agent; prints the user's access token.
hidden_field() { printf '%s' "$1" | sed -n "s/.*name=\"$2\" value=\"\([^\"]*\)\".*/\1/p" | head -n1; }
user_token_via_consent() { # base_url
  local base=$1 jar="$WORK/cookies.txt" verifier challenge loc page code body
  verifier=$(head -c 48 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=')
  challenge=$(printf '%s' "$verifier" | openssl dgst -sha256 -binary | base64 -w0 | tr '+/' '-_' | tr -d '=')
  loc=$(curl -sS -o /dev/null -w '%{redirect_url}' -c "$jar" -b "$jar" \
    "$base/authorize?response_type=code&client_id=$CLIENT_ID-agent&redirect_uri=https://agent.example/cb&scope=read&resource=$RESOURCE&state=s&code_challenge=$challenge&code_challenge_method=S256")
  page=$(curl -sS -c "$jar" -b "$jar" "$loc")
  loc=$(curl -sS -o /dev/null -w '%{redirect_url}' -c "$jar" -b "$jar" --data-urlencode "csrf=$(hidden_field "$page" csrf)" \
    --data-urlencode "request=$(hidden_field "$page" request)" --data-urlencode "username=$CLIENT_ID-user" \
    --data-urlencode "password=bench-password-0123" "$base/login")
  loc=$(curl -sS -o /dev/null -w '%{redirect_url}' -c "$jar" -b "$jar" "$loc")
  page=$(curl -sS -c "$jar" -b "$jar" "$loc")
  loc=$(curl -sS -o /dev/null -w '%{redirect_url}' -c "$jar" -b "$jar" --data-urlencode "csrf=$(hidden_field "$page" csrf)" \
    --data-urlencode "request=$(hidden_field "$page" request)" --data-urlencode scope=read --data-urlencode duration=86400 \
    --data-urlencode action=approve "$base/consent")
  code=$(printf '%s' "$loc" | sed -n 's/.*[?&]code=\([^&]*\).*/\1/p')
  [[ -n "$code" ]] || die "the consent flow gave no code (last location: $loc)"
  body=$(curl -sS -u "$CLIENT_ID-agent:$CLIENT_SECRET" --data-urlencode grant_type=authorization_code \
    --data-urlencode "code=$code" --data-urlencode redirect_uri=https://agent.example/cb \
    --data-urlencode "code_verifier=$verifier" "$base/token")
  printf '%s' "$body" | sed -n 's/.*"access_token"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p'
}

jwt_alg() { # prints the alg of a JWT's protected header, or "opaque"
  local h=${1%%.*}
  [[ "$1" == *.*.* ]] || { echo opaque; return; }
  h=$(printf '%s' "$h" | tr '_-' '/+'); while (( ${#h} % 4 )); do h="$h="; done
  printf '%s' "$h" | base64 -d 2>/dev/null | sed -n 's/.*"alg"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p'
}

# run_wrk target scenario concurrency pid url script [extra env...]
run_wrk() {
  local target=$1 scenario=$2 c=$3 pid=$4 url=$5 script=$6; shift 6
  local tag="${target}_${scenario}_c${c}" raw="$OUT/wrk_${target}_${scenario}_c${c}.txt"
  local envs=(BENCH_WRK_DIR="$WRK_DIR" BENCH_CLIENT_ID="$CLIENT_ID" BENCH_CLIENT_SECRET="$CLIENT_SECRET"
              BENCH_SCOPE="$SCOPE" "$@")
  local dur_s; dur_s=$(to_secs "$DURATION")
  if [[ "$WARMUP" != "0" && "$WARMUP" != "0s" ]]; then
    log "$target $scenario c=$c: warm-up $WARMUP"
    env "${envs[@]}" timeout $(( $(to_secs "$WARMUP") + 30 )) \
      taskset -c "$LOAD_CPU" wrk -t1 -c"$c" -d"$WARMUP" --timeout 5s -s "$WRK_DIR/$script" "$url" >/dev/null 2>&1 || true
  fi
  local peak_file="$WORK/peak_$tag"; echo 0 > "$peak_file"
  rss_sampler "$pid" "$peak_file" & local sampler=$!
  PIDS+=("$sampler")
  log "$target $scenario c=$c: measuring $DURATION"
  env "${envs[@]}" timeout $(( dur_s + 30 )) \
    taskset -c "$LOAD_CPU" wrk -t1 -c"$c" -d"$DURATION" --timeout 5s --latency -s "$WRK_DIR/$script" "$url" >"$raw" 2>&1 \
    || log "warning: wrk exited non-zero for $tag (see $raw)"
  kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true
  local peak; peak=$(cat "$peak_file"); local now; now=$(rss_kb "$pid")
  if (( ${now:-0} > peak )); then peak=$now; fi
  local hwm; hwm=$(proc_status_kb "$pid" VmHWM)

  local res; res=$(grep '^WRK_RESULT ' "$raw" || true)
  [[ -n "$res" ]] || { log "warning: no result line from wrk for $tag"; res="WRK_RESULT rps=0 p50_us=0 p99_us=0 requests=0 bad_bodies=0"; }
  field() { printf '%s\n' "$res" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
  local non2xx sock
  non2xx=$(sed -n 's/^[[:space:]]*Non-2xx or 3xx responses:[[:space:]]*\([0-9]*\).*/\1/p' "$raw"); non2xx=${non2xx:-0}
  sock=$(sed -n 's/^[[:space:]]*Socket errors: connect \([0-9]*\), read \([0-9]*\), write \([0-9]*\), timeout \([0-9]*\).*/\1 \2 \3 \4/p' "$raw" \
         | awk '{print $1+$2+$3+$4}'); sock=${sock:-0}
  local bad; bad=$(field bad_bodies); bad=${bad:-0}
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
    "$target" "$scenario" "$c" "$(field rps)" "$(field p50_us)" "$(field p99_us)" \
    "$non2xx" "$sock" "$bad" "$peak" "$hwm" "$(field requests)" >> "$RESULTS"
  log "$target $scenario c=$c: $(field rps) req/s, p50 $(field p50_us) µs, p99 $(field p99_us) µs, non-2xx $non2xx, socket $sock, bad bodies $bad, peak RSS $(fmt_mib "$peak")"
}

to_secs() { # 10s / 2m / 1h / 10 -> seconds
  local d=$1
  case "$d" in
    *h) echo $(( ${d%h} * 3600 ));; *m) echo $(( ${d%m} * 60 ));;
    *s) echo "${d%s}";; *) echo "$d";;
  esac
}

declare -A IDLE_RSS

# ---------------------------------------------------------------- (a) crypto floor
SIGN_US="" VERIFY_US=""
if [[ -z "${BENCH_SKIP_CRYPTO:-}" ]]; then
  log "ES256 floor: taskset -c $SERVER_CPU cargo bench --bench crypto_floor"
  timeout 600 taskset -c "$SERVER_CPU" cargo bench --locked --bench crypto_floor > "$OUT/crypto_floor.txt" 2>&1 \
    || { cat "$OUT/crypto_floor.txt" >&2; die "crypto_floor failed"; }
  SIGN_US=$(sed -n 's/^es256_sign_us=//p' "$OUT/crypto_floor.txt")
  VERIFY_US=$(sed -n 's/^es256_verify_us=//p' "$OUT/crypto_floor.txt")
  log "ES256 floor: sign ${SIGN_US} µs, verify ${VERIFY_US} µs"
fi

# ---------------------------------------------------------------- (b) Deputy
if [[ -z "${BENCH_SKIP_DEPUTY:-}" ]]; then
  [[ -x "$DEPUTY_BIN" ]] || die "$DEPUTY_BIN is missing (build failed or BENCH_SKIP_BUILD with no build)"
  PORT=$(free_port)
  DBURL="${BENCH_DB:-$WORK/deputy-bench.db}"
  if [[ -n "$BENCH_DB" ]]; then
    # A shared database may hold an earlier run's client: use a fresh client id.
    CLIENT_ID="bench-$(date +%s)-$$"
  fi
  cat > "$WORK/clients.toml" <<EOF
[[clients]]
client_id = "$CLIENT_ID"
client_secret = "$CLIENT_SECRET"
client_name = "Bench client"
grant_types = ["client_credentials"]
scope = "read write"
token_endpoint_auth_method = "client_secret_basic"
resources = ["$RESOURCE"]

[[clients]]
client_id = "$CLIENT_ID-agent"
client_secret = "$CLIENT_SECRET"
client_name = "Bench agent's client"
grant_types = ["authorization_code", "client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange"]
redirect_uris = ["https://agent.example/cb"]
scope = "read"
resources = ["$RESOURCE"]

[[agents]]
agent_id = "$CLIENT_ID-agent"
client_id = "$CLIENT_ID-agent"
name = "Bench agent"
publisher = "Bench"
allowed_scopes = "read"
allowed_audiences = ["$RESOURCE"]
max_token_ttl = 300

[[users]]
username = "$CLIENT_ID-user"
password = "bench-password-0123"
EOF
  export DEPUTY_LISTEN="$HOST:$PORT" DEPUTY_ISSUER="http://$HOST:$PORT" DEPUTY_DATABASE_URL="$DBURL"
  log "deputy import ($( [[ -n "$BENCH_DB" ]] && echo PostgreSQL || echo "SQLite $DBURL" ))"
  timeout 120 "$DEPUTY_BIN" import "$WORK/clients.toml" > "$OUT/deputy-import.log" 2>&1 \
    || { cat "$OUT/deputy-import.log" >&2; die "deputy import failed"; }
  log "starting deputy on $HOST:$PORT pinned to CPU $SERVER_CPU"
  RUST_LOG="${BENCH_RUST_LOG:-warn}" taskset -c "$SERVER_CPU" "$DEPUTY_BIN" serve > "$OUT/deputy.log" 2>&1 &
  DEPUTY_PID=$!
  PIDS+=("$DEPUTY_PID")
  unset DEPUTY_LISTEN DEPUTY_ISSUER DEPUTY_DATABASE_URL
  wait_healthy "http://$HOST:$PORT/healthz" "$DEPUTY_PID" deputy
  sleep 1
  IDLE_RSS[deputy]=$(rss_kb "$DEPUTY_PID")
  T=$(get_token "http://$HOST:$PORT" /token "$RESOURCE")
  ALG=$(jwt_alg "$T")
  [[ "$ALG" == "ES256" ]] || log "warning: Deputy's access token is not an ES256 JWT (alg: $ALG)"
  log "deputy issued a token, header alg $ALG; idle RSS $(fmt_mib "${IDLE_RSS[deputy]}")"
  wants token && for c in $CONCURRENCY; do
    run_wrk deputy token "$c" "$DEPUTY_PID" "http://$HOST:$PORT" token.lua \
      BENCH_PATH=/token BENCH_RESOURCE="$RESOURCE"
  done
  wants introspect && for c in $CONCURRENCY; do
    get_token "http://$HOST:$PORT" /token "$RESOURCE" > "$WORK/deputy_token"
    run_wrk deputy introspect "$c" "$DEPUTY_PID" "http://$HOST:$PORT" introspect.lua \
      BENCH_PATH=/introspect BENCH_TOKEN_FILE="$WORK/deputy_token"
  done
  # Token exchange: a user approves the agent (the browser flow, with curl), the
  # agent's client gets its own token as actor proof, then exchanges under load.
  if wants exchange; then
  user_token_via_consent "http://$HOST:$PORT" > "$WORK/subject_token"
  [[ -s "$WORK/subject_token" ]] || die "no user token from the consent flow"
  CLIENT_ID="$CLIENT_ID-agent" get_token "http://$HOST:$PORT" /token "$RESOURCE" > "$WORK/actor_token"
  for c in $CONCURRENCY; do
    run_wrk deputy exchange "$c" "$DEPUTY_PID" "http://$HOST:$PORT" exchange.lua \
      BENCH_PATH=/token BENCH_RESOURCE="$RESOURCE" BENCH_CLIENT_ID="$CLIENT_ID-agent" \
      BENCH_SUBJECT_FILE="$WORK/subject_token" BENCH_ACTOR_FILE="$WORK/actor_token"
  done
  fi
  curl -s "http://$HOST:$PORT/metrics" > "$OUT/deputy-metrics.txt" || true
  kill -TERM "$DEPUTY_PID" 2>/dev/null || true
  wait "$DEPUTY_PID" 2>/dev/null || true
fi

# ---------------------------------------------------------------- (c) node-oidc-provider
CLIENT_ID="bench"
if [[ -z "${BENCH_SKIP_PEER:-}" ]]; then
  PORT=$(free_port)
  log "starting node-oidc-provider $(node -p 'require("./benches/peer/node_modules/oidc-provider/package.json").version') (node $(node --version)) on $HOST:$PORT pinned to CPU $SERVER_CPU"
  (cd "$ROOT/benches/peer" && NODE_ENV=production PEER_CLIENT_ID="$CLIENT_ID" PEER_CLIENT_SECRET="$CLIENT_SECRET" \
     exec taskset -c "$SERVER_CPU" node server.js "$PORT") > "$OUT/peer.log" 2>&1 &
  PEER_PID=$!
  PIDS+=("$PEER_PID")
  wait_healthy "http://$HOST:$PORT/healthz" "$PEER_PID" peer
  sleep 1
  IDLE_RSS[peer]=$(rss_kb "$PEER_PID")
  T=$(get_token "http://$HOST:$PORT" /token "$RESOURCE")
  ALG=$(jwt_alg "$T")
  [[ "$ALG" == "ES256" ]] || die "peer access token is not an ES256 JWT (alg: $ALG)"
  log "peer issued a token, header alg $ALG; idle RSS $(fmt_mib "${IDLE_RSS[peer]}")"
  for c in $CONCURRENCY; do
    run_wrk peer token "$c" "$PEER_PID" "http://$HOST:$PORT" token.lua \
      BENCH_PATH=/token BENCH_RESOURCE="$RESOURCE"
  done
  # node-oidc-provider refuses to introspect JWT access tokens: introspect an opaque one.
  for c in $CONCURRENCY; do
    get_token "http://$HOST:$PORT" /token "$PEER_OPAQUE_RESOURCE" > "$WORK/peer_token"
    run_wrk peer introspect "$c" "$PEER_PID" "http://$HOST:$PORT" introspect.lua \
      BENCH_PATH=/token/introspection BENCH_TOKEN_FILE="$WORK/peer_token"
  done
  kill -TERM "$PEER_PID" 2>/dev/null || true
  wait "$PEER_PID" 2>/dev/null || true
fi

# ---------------------------------------------------------------- report
{
  echo "# Deputy benchmark, $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  deputy_desc="skipped"
  if [[ -z "${BENCH_SKIP_DEPUTY:-}" ]]; then
    deputy_desc="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo 'no commit')$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' +local changes'), database $( [[ -n "$BENCH_DB" ]] && echo PostgreSQL || echo SQLite), RUST_LOG=${BENCH_RUST_LOG:-warn}"
  fi
  peer_desc="skipped"
  if [[ -z "${BENCH_SKIP_PEER:-}" ]]; then
    peer_desc="node-oidc-provider $(node -p 'require("./benches/peer/node_modules/oidc-provider/package.json").version') on node $(node --version), in-memory adapter, ES256 JWT access tokens"
  fi
  echo "Machine: $(nproc --all) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)), $(uname -sr)." \
       "Server pinned to CPU $SERVER_CPU, wrk (-t1, ${DURATION} per run after ${WARMUP} warm-up) to CPU $LOAD_CPU; 127.0.0.1 only." \
       "Deputy: $deputy_desc. Peer: $peer_desc."
  echo
  if [[ -n "$SIGN_US" ]]; then
    echo "ES256 floor (josekit/OpenSSL, one core): sign ${SIGN_US} µs = $(awk -v s="$SIGN_US" 'BEGIN{printf "%.0f", 1e6/s}')/s," \
         "verify ${VERIFY_US} µs = $(awk -v s="$VERIFY_US" 'BEGIN{printf "%.0f", 1e6/s}')/s."
    echo
  fi
  echo "| target | scenario | conc. | req/s | p50 | p99 | errors | RSS idle | RSS under load (peak) | of ES256 floor | Deputy/peer |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  while IFS=$'\t' read -r target scenario c rps p50 p99 non2xx sock bad peak _hwm _reqs; do
    errs=$(( non2xx + sock + bad ))
    errtxt="$errs"
    if (( errs > 0 )); then errtxt="$errs (non-2xx $non2xx, socket $sock, bad body $bad)"; fi
    floor="-"
    if [[ -n "$SIGN_US" ]]; then
      if [[ "$scenario" == token ]]; then
        floor=$(awk -v r="$rps" -v s="$SIGN_US" 'BEGIN{printf "%.1f%% of sign", 100*r/(1e6/s)}')
      elif [[ "$scenario" == exchange ]]; then
        # The naive floor of an exchange: verify two ES256 tokens, sign one.
        floor=$(awk -v r="$rps" -v s="$SIGN_US" -v v="$VERIFY_US" 'BEGIN{printf "%.1f%% of 2 verify + 1 sign", 100*r/(1e6/(2*v+s))}')
      else
        floor=$(awk -v r="$rps" -v s="$VERIFY_US" 'BEGIN{printf "%.1f%% of verify", 100*r/(1e6/s)}')
      fi
    fi
    ratio="-"
    if [[ "$target" == deputy ]]; then
      prps=$(awk -F'\t' -v s="$scenario" -v c="$c" '$1=="peer" && $2==s && $3==c {print $4}' "$RESULTS")
      [[ -z "$prps" ]] || ratio=$(awk -v a="$rps" -v b="$prps" 'BEGIN{ if (b > 0) printf "%.2f×", a/b; else print "-" }')
    fi
    name="$target"; [[ "$target" == peer ]] && name="node-oidc-provider"
    scen="client_credentials"; [[ "$scenario" == introspect ]] && scen="introspection"
    [[ "$scenario" == exchange ]] && scen="token exchange (RFC 8693, audited)"
    [[ "$target" == peer && "$scenario" == introspect ]] && scen="introspection (opaque token)"
    printf '| %s | %s | %s | %.0f | %.2f ms | %.2f ms | %s | %s | %s | %s | %s |\n' \
      "$name" "$scen" "$c" "${rps:-0}" "$(awk -v u="${p50:-0}" 'BEGIN{print u/1000}')" \
      "$(awk -v u="${p99:-0}" 'BEGIN{print u/1000}')" "$errtxt" \
      "$(fmt_mib "${IDLE_RSS[$target]:-0}")" "$(fmt_mib "$peak")" "$floor" "$ratio"
  done < "$RESULTS"
  echo
  echo "Errors = wrk's \"Non-2xx or 3xx responses\" (status >= 400) + socket errors + 2xx responses without an access_token / \"active\":true." \
       "Floor fraction = req/s ÷ (10⁶ / ES256 µs): token runs against one signature, introspection runs against one verification." \
       "node-oidc-provider will not introspect JWT access tokens, so its introspection rows use an opaque token (a memory lookup, no signature check)." \
       "Raw wrk output: ${OUT#"$ROOT"/}/wrk_*.txt."
} > "$OUT/results.md"

echo
cat "$OUT/results.md"
log "written to $OUT/results.md"
