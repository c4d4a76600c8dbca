#!/usr/bin/env bash
# What a flood of open registrations costs (docs/mcp.md, docs/benchmarks.md): the release
# binary in open mode (no statement, the default per-address limit waived, info logging to a
# file), wrk posting the registration an MCP client sends, first without and then with an
# initial access token, alternating ROUNDS times. Prints registrations per second, CPU time per
# registration (from /proc), RSS after a 3 s warm-up and at the end, and the
# size of the status store file.
#
# Usage: scripts/bench-open-registration.sh [SECONDS_PER_PHASE] [CONNECTIONS]
# Environment: ROUNDS (default 2), BENCH_PORT (default: a free one).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-15} conns=${2:-32} rounds=${ROUNDS:-2}
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 2; }
cd "$repo"
cargo build --release --quiet --bin stateless-dcr
bin=$repo/target/release/stateless-dcr
work=$(mktemp -d)
pid=''
trap '[ -z "$pid" ] || { kill $pid 2>/dev/null; wait $pid 2>/dev/null; }; rm -rf "$work"' EXIT
port=${BENCH_PORT:-$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')}
base="http://127.0.0.1:$port"
cat >"$work/open.toml" <<TOML
listen = "127.0.0.1:$port"
public_url = "$base"
keys = "$repo/keys/dev-registrar-keys.json"
registration_requires = "nothing"
authorization_endpoint = "$base/authorize"
token_endpoint = "$base/token"
keys_reload_secs = 0
[rate_limits]
unlimited_open_registration = true
[status_store]
path = "$work/status.redb"
TOML
RUST_LOG=info "$bin" serve --config "$work/open.toml" >"$work/service.log" 2>&1 &
pid=$!
for _ in $(seq 200); do curl -sf "$base/jwks" >/dev/null && break; sleep 0.05; done
kill -0 $pid 2>/dev/null || { cat "$work/service.log" >&2; exit 1; }
token=$("$bin" iat issue --config "$work/open.toml" --expires-in 3600 --label bench 2>/dev/null)

body='{"client_name":"MCP CLI Client","redirect_uris":["http://127.0.0.1:33418/callback"],"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"token_endpoint_auth_method":"none"}'
lua() { # $1: extra header line
  cat <<LUA
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
$1
LUA
}
lua '' >"$work/open.lua"
lua "wrk.headers[\"Authorization\"] = \"Bearer $token\"" >"$work/token.lua"

ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
total=0
phase() { # $1: name, $2: lua, $3: seconds
  local before after out n
  before=$(cpu)
  out=$(wrk -t1 -c"$conns" -d"${3}s" -s "$2" "$base/register")
  after=$(cpu)
  n=$(echo "$out" | awk '/requests in/ {print $1}')
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
  total=$((total + n))
  printf '%-6s %8d registrations  %8.0f/s  %6.1f us CPU each  non-2xx %s\n' "$1" "$n" \
    "$(echo "$n / $3" | bc -l)" "$(echo "($after - $before) * 1000000 / $ticks / $n" | bc -l)" "${non2xx:-0}"
}
echo "== warm-up (3 s)"
wrk -t1 -c"$conns" -d3s -s "$work/open.lua" "$base/register" >/dev/null
warm=$(rss)
echo "RSS after warm-up: $((warm / 1024)) MiB"
for r in $(seq "$rounds"); do
  echo "== round $r"
  phase open "$work/open.lua" "$secs"
  phase token "$work/token.lua" "$secs"
done
echo "registrations measured: $total; RSS now $(($(rss) / 1024)) MiB (after warm-up $((warm / 1024)) MiB)"
echo "status store file: $(stat -c %s "$work/status.redb") bytes; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
