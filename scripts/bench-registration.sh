#!/usr/bin/env bash
# Load benchmark of the registration endpoint, side by side with the peer (node-oidc-provider,
# ../shared/bench/peer-registration.sh) in the same run, on the same machine, with the same load
# generator and settings (wrk, one thread, CONNECTIONS connections). docs/benchmarks.md.
#
# Usage: scripts/bench-registration.sh [MODE] [SECONDS] [CONNECTIONS]
#   MODE distinct  ROUNDS rounds of: the service on distinct ES256 statements it has never seen,
#                  the ceiling probe (../shared/bench/ceiling), the peer; ratios per round and
#                  their median (default)
#        repeated  one statement repeated (the common case in a federation), then the peer
#        read      GET registration_client_uri (RFC 7592 read) and POST /resolve, no peer
#        all       distinct, repeated, read; every ratio
# SECONDS defaults to 10, CONNECTIONS to 32.
# Environment:
#   ROUNDS      rounds of the distinct comparison (default 3); the median is quoted
#   STATEMENTS  distinct statements minted for each round (default 300000: more than a round
#               sends, so that no cache of verified statements can hide a verification); a
#               separate set warms the service up, so that the warm-up fills no cache either
#   BENCH_PORT  port of the service (default: a free one); PEER_PORT for the peer (default 3199)
#   BENCH_LOG   the service's log level (default info, as a user runs it: the access line and the
#               audit line of every registration, written to a file)
#   SKIP_PEER=1 do not run the peer; SKIP_CEILING=1 do not run the ceiling probe
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
  RUST_LOG=${BENCH_LOG:-info} "$bin" serve --config "$work/bench.toml" >>"$work/service.log" 2>&1 &
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

rounds=${ROUNDS:-3}
# one round: the service on statements it has never seen (after a warm-up on others), then the
# probe, then the peer, one after the other
run_distinct_round() {
  local round=$1
  echo "== round $round: minting $statements distinct software statements (and 20000 for the warm-up)"
  "$minter" --count "$statements" --out "$work/distinct.jsonl"
  "$minter" --count 20000 --out "$work/warmup.jsonl"
  start_service
  BODIES="$work/warmup.jsonl" wrk -t1 -c"$conns" -d2s -s "$shared/bodies.lua" "$base/register" >/dev/null
  echo "== round $round: service, registration, distinct ES256 statements, ${secs}s, $conns connections, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  BODIES="$work/distinct.jsonl" wrk -t1 -c"$conns" -d"${secs}s" --latency -s "$shared/bodies.lua" \
    "$base/register" | tee "$work/distinct-$round.out"
  local sent
  sent=$(awk '/requests in/{print $1}' "$work/distinct-$round.out")
  if [ "$sent" -gt "$statements" ]; then
    echo "WARNING: $sent requests for $statements statements: some statements were sent twice (raise STATEMENTS)"
  fi
  stop_service
  rm -f "$work/distinct.jsonl" "$work/warmup.jsonl"
  if [ "${SKIP_CEILING:-0}" != 1 ]; then
    echo "== round $round: ceiling probe, ${secs}s, $conns connections, load average $(cut -d' ' -f1-3 /proc/loadavg)"
    bash "$shared/ceiling/run.sh" "$secs" "$conns" "$statements" | tee "$work/ceiling-$round.out"
  fi
  if [ "${SKIP_PEER:-0}" != 1 ]; then
    echo "== round $round: peer, node-oidc-provider, in-memory store, ${secs}s, $conns connections"
    bash "$shared/peer-registration.sh" "$secs" "$conns" | tee "$work/peer-$round.out"
  fi
}

run_distinct() {
  for round in $(seq "$rounds"); do run_distinct_round "$round"; done
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

if [ "$mode" = repeated ] || [ "$mode" = all ]; then
  if [ "${SKIP_PEER:-0}" != 1 ] && [ ! -f "$work/peer-1.out" ]; then
    echo "== peer: node-oidc-provider, in-memory store, ${secs}s, $conns connections"
    bash "$shared/peer-registration.sh" "$secs" "$conns" | tee "$work/peer-1.out"
  fi
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.2f", a/b; else print "-" }'; }
# p99 as printed by wrk (1.23ms, 456.78us, 1.2s) in milliseconds
ms() { awk -v v="$1" 'BEGIN{ n=v+0; if (v ~ /us$/) n/=1000; else if (v ~ /[0-9]s$/ && v !~ /ms$/) n*=1000; printf "%.3f", n }'; }
median() { sort -g | awk '{a[NR]=$1} END{ if (NR==0) print "-"; else if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2 }'; }

echo
echo "== summary (this machine, this invocation; quote ratios, not absolute figures)"
echo "machine: $(nproc) cores; load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
: >"$work/r-probe"; : >"$work/r-peer"; : >"$work/r-p99"
for out in "$work"/distinct-*.out; do
  [ -f "$out" ] || continue
  round=${out##*-}; round=${round%.out}
  ours=$(rps "$out")
  line="round $round: service $ours/s p99 $(p99 "$out")"
  if [ -f "$work/ceiling-$round.out" ]; then
    probe=$(rps "$work/ceiling-$round.out")
    r=$(ratio "$ours" "$probe"); echo "$r" >>"$work/r-probe"
    pr=$(ratio "$(ms "$(p99 "$out")")" "$(ms "$(p99 "$work/ceiling-$round.out")")"); echo "$pr" >>"$work/r-p99"
    line="$line; probe $probe/s p99 $(p99 "$work/ceiling-$round.out"); service/probe $r, p99 service/probe $pr"
  fi
  if [ -f "$work/peer-$round.out" ]; then
    peer=$(rps "$work/peer-$round.out")
    r=$(ratio "$ours" "$peer"); echo "$r" >>"$work/r-peer"
    line="$line; peer $peer/s; service/peer $r"
  fi
  echo "$line"
done
[ -s "$work/r-probe" ] && echo "median service/probe (distinct): $(median <"$work/r-probe"), median p99 service/probe: $(median <"$work/r-p99")"
[ -s "$work/r-peer" ] && echo "median service/peer (distinct): $(median <"$work/r-peer")"
if [ -f "$work/repeated.out" ]; then
  ours=$(rps "$work/repeated.out")
  line="repeated statement: service $ours/s p99 $(p99 "$work/repeated.out")"
  [ -f "$work/peer-1.out" ] && line="$line; service/peer $(ratio "$ours" "$(rps "$work/peer-1.out")")"
  echo "$line"
fi
[ -f "$work/read.out" ] && echo "service reads/s: $(rps "$work/read.out"), p99 $(p99 "$work/read.out")"
[ -f "$work/resolve.out" ] && echo "service resolves/s: $(rps "$work/resolve.out"), p99 $(p99 "$work/resolve.out")"
exit 0
