#!/usr/bin/env bash
# Load benchmark of the registration endpoint, side by side with the peer (node-oidc-provider,
# ../shared/bench/peer-registration.sh) in the same run, on the same machine, with the same load
# generator and settings (wrk, one thread, CONNECTIONS connections). docs/benchmarks.md.
#
# Usage: scripts/bench-registration.sh [MODE] [SECONDS] [CONNECTIONS]
#   MODE distinct  registrations with N distinct ES256 statements (default), then the peer
#        repeated  one statement repeated (the common case in a federation), then the peer
#        read      GET registration_client_uri (RFC 7592 read) and POST /resolve, no peer
#        all       distinct, repeated, read, then the peer once; both ratios
# SECONDS defaults to 10, CONNECTIONS to 32.
# Environment:
#   STATEMENTS  distinct statements minted for the distinct run (default 300000: more than the
#               run sends, so that no cache of verified statements can hide a verification)
#   BENCH_PORT  port of the service (default: a free one); PEER_PORT for the peer (default 3199)
#   BENCH_LOG   the service's log level (default warn: no per-request lines, as the peer writes
#               none; info adds the access log and the audit line of every registration, to a file)
#   SKIP_PEER=1 do not run the peer
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
shared=$(cd "$repo/../shared/bench" && pwd)
mode=${1:-distinct} secs=${2:-10} conns=${3:-32}
case $mode in distinct|repeated|read|all) ;; *) echo "MODE must be distinct, repeated, read or all" >&2; exit 2 ;; esac
statements=${STATEMENTS:-300000}
apt_install() { apt-get install -y "$@" >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y "$@" >/dev/null; }; }
command -v wrk >/dev/null || apt_install wrk
command -v curl >/dev/null || apt_install curl

cd "$repo"
echo "== building the release binary and the statement minter"
cargo build --release --quiet --bin stateless-dcr --example mint_statements
bin=$repo/target/release/stateless-dcr
minter=$repo/target/release/examples/mint_statements

work=$(mktemp -d)
pid=''
# stop only what this script started
trap '[ -z "$pid" ] || { kill $pid 2>/dev/null; wait $pid 2>/dev/null; }; rm -rf "$work"' EXIT

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})' 2>/dev/null ||
    python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'
}
port=${BENCH_PORT:-$(free_port)}
base="http://127.0.0.1:$port"
if curl -s -o /dev/null "$base/"; then echo "port $port is already in use; set BENCH_PORT" >&2; exit 2; fi
sed -e "s#127.0.0.1:18089#127.0.0.1:$port#g" -e "s#\"\.\./keys/#\"$repo/keys/#g" \
  -e "s#bench-status.redb#$work/status.redb#" "$repo/scripts/bench-server.toml" >"$work/bench.toml"
resolve_token=$(sed -n 's/^resolve_api_tokens = \["\([^"]*\)"\]/\1/p' "$work/bench.toml")

start_service() {
  RUST_LOG=${BENCH_LOG:-warn} "$bin" serve --config "$work/bench.toml" >>"$work/service.log" 2>&1 &
  pid=$!
  for _ in $(seq 200); do curl -sf "$base/jwks" >/dev/null && break; sleep 0.05; done
  kill -0 $pid 2>/dev/null || { cat "$work/service.log" >&2; exit 1; }
}
stop_service() {
  echo "service RSS after run (KiB): $(awk '/VmRSS/{print $2}' /proc/$pid/status)"
  kill $pid; wait $pid 2>/dev/null || true; pid=''
}
rps() { awk '/^Requests\/sec:/{print $2}' "$1"; }
p99() { awk '$1=="99%"{print $2}' "$1"; }

echo "== machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1); load average $(cut -d' ' -f1-3 /proc/loadavg)"

run_distinct() {
  echo "== minting $statements distinct software statements"
  "$minter" --count "$statements" --out "$work/distinct.jsonl"
  start_service
  echo "== service: registration, $statements distinct ES256 statements, ${secs}s, $conns connections"
  BODIES="$work/distinct.jsonl" wrk -t1 -c"$conns" -d"${secs}s" --latency -s "$shared/bodies.lua" \
    "$base/register" | tee "$work/distinct.out"
  local sent
  sent=$(awk '/requests in/{print $1}' "$work/distinct.out")
  if [ "$sent" -gt "$statements" ]; then
    echo "WARNING: $sent requests for $statements statements: some statements were sent twice (raise STATEMENTS)"
  else
    echo "every request carried a statement not sent before ($sent requests, $statements statements)"
  fi
  stop_service
  rm -f "$work/distinct.jsonl"
}

run_repeated() {
  "$minter" --count 1 --repeat 1000 --out "$work/repeated.jsonl"
  start_service
  echo "== service: registration, one statement repeated, ${secs}s, $conns connections"
  BODIES="$work/repeated.jsonl" wrk -t1 -c"$conns" -d"${secs}s" --latency -s "$shared/bodies.lua" \
    "$base/register" | tee "$work/repeated.out"
  stop_service
}

run_read() {
  "$minter" --count 1000 --out "$work/clients.jsonl"
  start_service
  echo "== registering 1000 clients to read back"
  : >"$work/reads.txt"
  : >"$work/resolves.jsonl"
  while read -r body; do
    answer=$(curl -sf -H 'Content-Type: application/json' -d "$body" "$base/register")
    field() { printf '%s' "$answer" | grep -o "\"$1\":\"[^\"]*\"" | cut -d'"' -f4; }
    uri=$(field registration_client_uri)
    echo "${uri#"$base"} $(field registration_access_token)" >>"$work/reads.txt"
    printf '{"client_id":"%s","client_secret":"%s","client_auth_method":"client_secret_basic","redirect_uri":"https://client.example.org/callback","response_type":"code"}\n' \
      "$(field client_id)" "$(field client_secret)" >>"$work/resolves.jsonl"
  done <"$work/clients.jsonl"
  echo "== service: read (GET registration_client_uri + registration access token), 1000 clients, ${secs}s, $conns connections"
  READS="$work/reads.txt" wrk -t1 -c"$conns" -d"${secs}s" --latency -s "$repo/scripts/bench-read.lua" \
    "$base" | tee "$work/read.out"
  echo "== service: POST /resolve (client_id, client_secret, redirect_uri, response_type), 1000 clients, ${secs}s, $conns connections"
  BODIES="$work/resolves.jsonl" wrk -t1 -c"$conns" -d"${secs}s" --latency -H "Authorization: Bearer $resolve_token" \
    -s "$shared/bodies.lua" "$base/resolve" | tee "$work/resolve.out"
  stop_service
}

case $mode in
  distinct) run_distinct ;;
  repeated) run_repeated ;;
  read) run_read ;;
  all) run_distinct; run_repeated; run_read ;;
esac

if [ "$mode" != read ] && [ "${SKIP_PEER:-0}" != 1 ]; then
  echo "== peer: node-oidc-provider, in-memory store, ${secs}s, $conns connections"
  bash "$shared/peer-registration.sh" "$secs" "$conns" | tee "$work/peer.out"
fi

echo
echo "== summary (one run, this machine; quote ratios, not absolute figures)"
peer=''
[ -f "$work/peer.out" ] && peer=$(rps "$work/peer.out")
[ -n "$peer" ] && echo "peer registrations/s:                   $peer"
for run in distinct repeated; do
  [ -f "$work/$run.out" ] || continue
  ours=$(rps "$work/$run.out")
  line="service registrations/s ($run): $ours, p99 $(p99 "$work/$run.out")"
  [ -n "$peer" ] && line="$line, ratio to the peer $(awk -v a="$ours" -v b="$peer" 'BEGIN{printf "%.2f", a/b}')"
  echo "$line"
done
[ -f "$work/read.out" ] && echo "service reads/s: $(rps "$work/read.out"), p99 $(p99 "$work/read.out")"
[ -f "$work/resolve.out" ] && echo "service resolves/s: $(rps "$work/resolve.out"), p99 $(p99 "$work/resolve.out")"
exit 0
