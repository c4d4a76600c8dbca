#!/usr/bin/env bash
# docs/openapi.yaml against the real server: check_responses.py (a realistic flow and the error
# cases, every response validated against the description), then schemathesis against a server
# configured for open registration (run_schemathesis.py). Installs what it needs itself.
#
#   STATELESS_DCR_BIN     the server binary (default: target/debug/stateless-dcr)
#   OPENAPI_VENV          a virtual environment to create or reuse (default: a new one in a
#                         temporary directory, removed at the end)
#   OPENAPI_PYTHON        the interpreter for a new venv (default: python3.11, else python3)
#   OPENAPI_MAX_EXAMPLES  schemathesis test cases per operation (default 50)
#   OPENAPI_SEED          schemathesis' random seed, to replay a run (it prints the one it used)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
started=$(date +%s)

if [ -n "${STATELESS_DCR_BIN:-}" ]; then
  # absolute, so that it means the same from any directory
  case "$STATELESS_DCR_BIN" in
    /*) ;;
    *) STATELESS_DCR_BIN="$(pwd)/$STATELESS_DCR_BIN" ;;
  esac
  export STATELESS_DCR_BIN
fi

python="${OPENAPI_PYTHON:-}"
if [ -z "$python" ]; then
  if command -v python3.11 >/dev/null 2>&1; then python=python3.11; else python=python3; fi
fi
"$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || {
  echo "openapi: $python is older than Python 3.11" >&2
  exit 1
}

venv="${OPENAPI_VENV:-}"
if [ -z "$venv" ]; then
  scratch="$(mktemp -d "${TMPDIR:-/tmp}/stateless-dcr-openapi-venv.XXXXXX")"
  trap 'rm -rf "$scratch"' EXIT
  venv="$scratch/venv"
fi
if [ ! -x "$venv/bin/python" ]; then
  echo "openapi: creating a virtual environment in $venv"
  "$python" -m venv "$venv"
fi
echo "openapi: installing tests/openapi/requirements.txt"
"$venv/bin/python" -m pip install --disable-pip-version-check --no-input --quiet \
  --no-deps -r "$here/requirements.txt"
"$venv/bin/python" -m pip check --disable-pip-version-check >/dev/null

export PYTHONDONTWRITEBYTECODE=1
passed=0
failed=0
if "$venv/bin/python" "$here/check_responses.py"; then
  passed=$((passed + 1))
else
  failed=$((failed + 1))
  echo "openapi: check_responses.py FAILED" >&2
fi
if "$venv/bin/python" "$here/run_schemathesis.py"; then
  passed=$((passed + 1))
else
  failed=$((failed + 1))
  echo "openapi: schemathesis FAILED" >&2
fi

echo "openapi: took $(($(date +%s) - started)) s"
echo "openapi: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
