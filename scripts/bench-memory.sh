#!/usr/bin/env bash
# Memory of the service as registrations accumulate (docs/benchmarks.md): the resident set size
# (VmRSS) after 10,000 registrations and after 1,000,000, and at a few points between, with wrk
# (one thread, CONNECTIONS connections) and distinct ES256 statements. The service keeps nothing
# per client, so the figure should stay flat; compare the peer with PEER_STORE=redis, which keeps
# about 1.1 kB per client (docs/benchmarks.md).
#
# Usage: scripts/bench-memory.sh [TOTAL] [CONNECTIONS]    (defaults 1000000 and 32)
# Environment:
#   STATEMENTS  distinct statements minted and cycled through (default 100000; more than the
#               cache of 10,000 verified statements holds, so they keep missing it)
#   CHECKPOINTS registration counts at which RSS is read (default "10000 100000 250000 500000
#               750000 TOTAL")
#   BENCH_PORT  port of the service (default: a free one)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
total=${1:-1000000} conns=${2:-32}
statements=${STATEMENTS:-100000}
checkpoints=${CHECKPOINTS:-"10000 100000 250000 500000 750000 $total"}
apt_install() { apt-get install -y "$@" >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y "$@" >/dev/null; }; }
command -v wrk >/dev/null || apt_install wrk
command -v curl >/dev/null || apt_install curl

cd "$repo"
echo "== building the release binary and the statement minter"
cargo build --release --quiet --bin stateless-dcr --example mint_statements
bin=$repo/target/release/stateless-dcr

work=$(mktemp -d)
pid=''
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

echo "== minting $statements distinct software statements"
"$repo/target/release/examples/mint_statements" --count "$statements" --out "$work/bodies.jsonl"

RUST_LOG=${BENCH_LOG:-warn} "$bin" serve --config "$work/bench.toml" >"$work/service.log" 2>&1 &
pid=$!
for _ in $(seq 200); do curl -sf "$base/jwks" >/dev/null && break; sleep 0.05; done
kill -0 $pid 2>/dev/null || { cat "$work/service.log" >&2; exit 1; }
rss() { awk '/VmRSS/{print $2}' /proc/$pid/status; }
echo "== machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
echo "service RSS at start (KiB): $(rss)"
printf '%14s %12s %12s %10s\n' registrations "RSS KiB" "RSS MiB" "reg/s"
done_count=0 first_rss='' first_count=''
for point in $checkpoints; do
  [ "$point" -gt "$done_count" ] || continue
  n=$((point - done_count))
  # wrk runs for a time: its script marks when it has n answers, and wrk is interrupted then
  rm -f "$work/done"
  BODIES="$work/bodies.jsonl" LIMIT=$n DONE_FILE="$work/done" wrk -t1 -c"$conns" -d3600s \
    -s "$repo/scripts/bench-bodies-limit.lua" "$base/register" >"$work/wrk.out" &
  wpid=$!
  while [ ! -e "$work/done" ] && kill -0 $wpid 2>/dev/null; do sleep 0.1; done
  kill -INT $wpid 2>/dev/null || true
  wait $wpid || true
  answers=$(sed -n 's/^answers: \([0-9]*\),.*/\1/p' "$work/wrk.out")
  bad=$(sed -n 's/.*non-2xx answers: \([0-9]*\).*/\1/p' "$work/wrk.out")
  [ "${bad:-1}" = 0 ] || { echo "non-2xx answers: $bad" >&2; cat "$work/wrk.out" >&2; exit 1; }
  done_count=$((done_count + answers))
  r=$(rss)
  printf '%14d %12d %12.1f %10s\n' "$done_count" "$r" "$(awk -v r="$r" 'BEGIN{print r/1024}')" \
    "$(awk '/^Requests\/sec:/{printf "%d", $2}' "$work/wrk.out")"
  [ -n "$first_rss" ] || { first_rss=$r; first_count=$done_count; }
  last_rss=$r
done
echo
echo "RSS after $first_count registrations: $first_rss KiB; after $done_count: $last_rss KiB;" \
  "difference $(awk -v a="$first_rss" -v b="$last_rss" 'BEGIN{printf "%.1f MiB", (b-a)/1024}')" \
  "($(awk -v a="$first_rss" -v b="$last_rss" -v n=$((done_count - first_count)) 'BEGIN{printf "%.2f", (b-a)*1024/n}') bytes per registration)"
echo "(wrk stops each step after its count of answers; requests in flight then are served but not counted, at most $conns a step)"
