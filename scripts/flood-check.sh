#!/usr/bin/env bash
# A bounded flood of open registrations, as a check (run by .ci/run; docs/mcp.md): the release
# binary in open mode with its default configuration for MCP servers (status store, status
# lists, info logging to a file), posting the registration an MCP client sends from four
# keep-alive connections. After 10,000 registrations and again after 100,000 in all, it reads
# the server's RSS and the status store file, and fails when either grew with the number of
# registrations:
#   - RSS may grow by at most FLOOD_MAX_RSS_GROWTH_KIB (default 16 MiB) between the two points;
#   - the store file may grow by at most FLOOD_MAX_STORE_GROWTH_BYTES (default 256 KiB): a
#     registration writes nothing, only a block of status list indexes every few thousand;
#   - every answer must be 201.
# No time limit: it takes as long as the machine needs.
#
# Usage: STATELESS_DCR_BIN=target/release/stateless-dcr scripts/flood-check.sh [TOTAL]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
total=${1:-100000}
first=10000
max_rss_growth_kib=${FLOOD_MAX_RSS_GROWTH_KIB:-16384}
max_store_growth=${FLOOD_MAX_STORE_GROWTH_BYTES:-262144}
bin=${STATELESS_DCR_BIN:-$repo/target/release/stateless-dcr}
case "$bin" in /*) ;; *) bin=$repo/$bin ;; esac
[ -x "$bin" ] || { echo "flood-check: no binary at $bin (cargo build --release)" >&2; exit 2; }
work=$(mktemp -d)
pid=''
trap '[ -z "$pid" ] || { kill $pid 2>/dev/null; wait $pid 2>/dev/null; }; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
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
# one address sends the whole flood; the per-address limit of open mode would refuse it
unlimited_open_registration = true
[status_store]
path = "$work/status.redb"
TOML
# STATELESS_DCR_* variables of the caller would be read as options
env -u STATELESS_DCR_BIN RUST_LOG=info "$bin" serve --config "$work/open.toml" >"$work/service.log" 2>&1 &
pid=$!
for _ in $(seq 200); do curl -sf "$base/jwks" >/dev/null && break; sleep 0.05; done
kill -0 $pid 2>/dev/null || { cat "$work/service.log" >&2; exit 1; }

# The flood: keep-alive connections from a few threads, every answer but 201 counted.
cat >"$work/flood.py" <<'PY'
import http.client, sys, threading
port, count, threads = int(sys.argv[1]), int(sys.argv[2]), 4
body = (b'{"client_name":"MCP CLI Client","redirect_uris":["http://127.0.0.1:33418/callback"],'
        b'"grant_types":["authorization_code","refresh_token"],"response_types":["code"],'
        b'"token_endpoint_auth_method":"none"}')
headers = {"Content-Type": "application/json"}
refused = []
def run(n):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for _ in range(n):
        conn.request("POST", "/register", body, headers)
        response = conn.getresponse()
        response.read()
        if response.status != 201:
            refused.append(response.status)
workers = [threading.Thread(target=run, args=(count // threads + (i < count % threads),))
           for i in range(threads)]
for w in workers: w.start()
for w in workers: w.join()
if refused:
    sys.exit(f"{len(refused)} of {count} answers were not 201 (first: {refused[0]})")
PY
flood() { # $1: registrations
  python3 "$work/flood.py" "$port" "$1" || { tail -20 "$work/service.log" >&2; exit 1; }
}
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
flood "$first"
rss_first=$(rss)
store_first=$(stat -c %s "$work/status.redb")
flood $((total - first))
rss_last=$(rss)
store_last=$(stat -c %s "$work/status.redb")
rss_growth=$((rss_last - rss_first))
store_growth=$((store_last - store_first))
echo "flood-check: $total open registrations; RSS $((rss_first / 1024)) MiB after $first, $((rss_last / 1024)) MiB after $total (growth ${rss_growth} KiB, at most $max_rss_growth_kib); status store $store_first -> $store_last bytes (growth $store_growth, at most $max_store_growth)"
[ "$rss_growth" -le "$max_rss_growth_kib" ] || { echo "flood-check: memory grew with the registrations" >&2; exit 1; }
[ "$store_growth" -le "$max_store_growth" ] || { echo "flood-check: the status store grew with the registrations" >&2; exit 1; }
