#!/usr/bin/env python3
"""schemathesis against a stateless-dcr server configured for open registration.

Starts the server binary (STATELESS_DCR_BIN, default ../../target/debug/stateless-dcr relative
to this file) with `require_software_statement = false`, `management = "full"`, the resolve
API and the admin API on, then runs `schemathesis run docs/openapi.yaml` with exactly the checks
not_a_server_error, status_code_conformance, content_type_conformance and
response_schema_conformance, at most OPENAPI_MAX_EXAMPLES (default 50) test cases per operation
(schemathesis_hooks.py lets it read `application/statuslist+jwt` bodies).
OPENAPI_SEED fixes schemathesis' random seed (it prints the one it used). Exits with
schemathesis' status, or 1 when the server died during the run.

Usage: python3 run_schemathesis.py [extra schemathesis run options...]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import harness
from harness import ADMIN_TOKEN, HERE, RESOLVE_TOKEN, SPEC_PATH, Material, Server

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def main() -> int:
    max_examples = os.environ.get("OPENAPI_MAX_EXAMPLES", "50")
    seed = os.environ.get("OPENAPI_SEED")
    binary = harness.server_binary()
    with tempfile.TemporaryDirectory(prefix="stateless-dcr-schemathesis-") as tmp:
        material = Material(binary, Path(tmp))
        with Server(
            material,
            "open",
            options={"require_software_statement": False, "admin_api_tokens": [ADMIN_TOKEN]},
            # thousands of examples from one address: without this, open registration's default
            # per-address limit would answer most of them with 429
            tables={"rate_limits": {"unlimited_open_registration": True}},
        ) as server:
            command = [
                sys.executable,
                "-m",
                "schemathesis.cli",
                "--config-file",
                str(HERE / "schemathesis.toml"),
                "--no-color",
                "run",
                str(SPEC_PATH),
                "--url",
                server.url,
                "--checks",
                CHECKS,
                "--max-examples",
                max_examples,
                "--generation-database",
                "none",
                "--request-timeout",
                "20",
                # one worker: hypothesis describes strategies with ast.parse, which is not
                # thread-safe on CPython 3.11 ("AST constructor recursion depth mismatch")
                "--workers",
                "1",
                *(["--seed", seed] if seed else []),
                *sys.argv[1:],
            ]
            environment = dict(
                os.environ,
                OPENAPI_RESOLVE_TOKEN=RESOLVE_TOKEN,
                OPENAPI_ADMIN_TOKEN=ADMIN_TOKEN,
                SCHEMATHESIS_HOOKS=str(HERE / "schemathesis_hooks.py"),
            )
            print(f"openapi: schemathesis against {binary} at {server.url}", flush=True)
            try:
                status = subprocess.run(command, env=environment, cwd=tmp, timeout=900).returncode
            except subprocess.TimeoutExpired:
                print("openapi: schemathesis did not finish within 900 s", file=sys.stderr)
                status = 1
            if server.process is None or server.process.poll() is not None:
                log = server.log_path.read_text(errors="replace")
                print(f"openapi: the server died during the run:\n{log}", file=sys.stderr)
                return 1
            log = server.log_path.read_text(errors="replace")
            if "panicked" in log:
                print(f"openapi: the server panicked during the run:\n{log}", file=sys.stderr)
                status = status or 1
    return status


if __name__ == "__main__":
    sys.exit(main())
