#!/usr/bin/env bash
# Runs the README quickstart verbatim: builds and starts `cargo run --release`, then executes the
# commands between the quickstart markers of README.md and checks what they printed.
set -euo pipefail
cd "$(dirname "$0")/.."
port=8080
if curl -s -o /dev/null "http://127.0.0.1:$port/"; then
  echo "port $port is busy; the quickstart needs it" >&2
  exit 1
fi
work=$(mktemp -d)
cargo build --release --quiet
cargo run --release --quiet >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$work"; rm -f client.json' EXIT
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/.well-known/openid-configuration" >/dev/null && break
  sleep 0.2
done
# the shell blocks between the markers, in order
awk '/<!-- quickstart:begin -->/{on=1; next} /<!-- quickstart:end -->/{on=0} on' README.md |
  awk '/^```sh/{inside=1; next} /^```/{inside=0} inside' >"$work/quickstart.sh"
echo "--- running the README quickstart:"
cat "$work/quickstart.sh"
bash -euo pipefail "$work/quickstart.sh" >"$work/out.txt"
cat "$work/out.txt"
grep -q '"client_id":"' "$work/out.txt" || { echo "quickstart: no client_id registered" >&2; exit 1; }
[ "$(grep -o '"registration_access_token":"' "$work/out.txt" | wc -l)" -ge 2 ] || {
  echo "quickstart: the read-back did not return the client" >&2; exit 1; }
grep -q '"valid": true' "$work/out.txt" || { echo "quickstart: client inspect failed" >&2; exit 1; }
echo "quickstart: OK"
