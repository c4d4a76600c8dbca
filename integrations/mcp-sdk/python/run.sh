#!/usr/bin/env bash
# Run test_mcp_python.py against a fresh stateless-dcr server with open registration:
# a venv in python/.venv with the hash-pinned SDK, the server on a free loopback port with a
# config in a temp dir (as test/helpers/registrar.js does for the Node tests), then stop it.
#
#   STATELESS_DCR_BIN=/path/to/stateless-dcr bash python/run.sh
#
# STATELESS_DCR_BIN is taken relative to the package directory (integrations/mcp-sdk), like
# the Node tests; default: the release build of the repository.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
package="$(dirname "$here")"
bin="${STATELESS_DCR_BIN:-../../target/release/stateless-dcr}"
case "$bin" in /*) ;; *) bin="$package/$bin" ;; esac
keys="$(cd "$package/../../keys" && pwd)/dev-registrar-keys.json"
if [[ ! -x "$bin" ]]; then
  echo "no server binary at $bin: build it, or set STATELESS_DCR_BIN" >&2
  exit 2
fi

venv="$here/.venv"
if [[ ! -x "$venv/bin/python" ]]; then
  "${PYTHON:-python3}" -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --require-hashes -r "$here/requirements.txt"

free_port() { "$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port="$(free_port)"
op_port="$(free_port)" # nothing listens there: the OP endpoints are only published in discovery
url="http://127.0.0.1:$port"

dir="$(mktemp -d "${TMPDIR:-/tmp}/stateless-dcr-mcp-py.XXXXXX")"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT

cat > "$dir/config.toml" <<TOML
listen = "127.0.0.1:$port"
public_url = "$url"
keys = "$keys"
require_software_statement = false
authorization_endpoint = "http://127.0.0.1:$op_port/authorize"
token_endpoint = "http://127.0.0.1:$op_port/token"
keys_reload_secs = 0

[status_store]
kind = "embedded"
path = "status.redb"
TOML

# The server reads every STATELESS_DCR_* variable as an option and refuses unknown ones
# (STATELESS_DCR_BIN included): it is configured by its file alone.
(
  cd "$dir"
  for name in $(compgen -e | grep '^STATELESS_DCR_' || true); do unset "$name"; done
  exec "$bin" serve --config config.toml
) > "$dir/server.log" 2>&1 &
server_pid=$!

for _ in $(seq 200); do
  if "$venv/bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
      "$url/.well-known/openid-configuration" 2>/dev/null; then
    break
  fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "stateless-dcr exited:" >&2; cat "$dir/server.log" >&2; exit 2
  fi
  sleep 0.1
done

status=0
STATELESS_DCR_URL="$url" "$venv/bin/python" "$here/test_mcp_python.py" || status=$?
if [[ $status -ne 0 ]]; then
  echo "--- server log" >&2; cat "$dir/server.log" >&2
fi
exit $status
