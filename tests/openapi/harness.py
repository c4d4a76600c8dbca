"""Shared by check_responses.py and run_schemathesis.py: the server binary, its key material and
configuration in a temporary directory, a running server on a free loopback port, and the OpenAPI
document with a JSON Schema validator for the schemas in it.

Only loopback addresses are used. Every server started here is stopped by the context manager.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

HERE = Path(__file__).resolve().parent
SPEC_PATH = HERE.parent.parent / "docs" / "openapi.yaml"
SPEC_URI = "urn:stateless-dcr:openapi"

# the trusted federation authority of the test configurations
AUTHORITY_ISSUER = "https://federation.openapi-test.example"
# at least 32 characters (configuration.md, resolve_api_tokens)
RESOLVE_TOKEN = "openapi-test-resolve-token-0123456789abcdef"
# at least 32 characters (configuration.md, admin_api_tokens)
ADMIN_TOKEN = "openapi-test-admin-token-0123456789abcdefgh"


def server_binary() -> Path:
    """STATELESS_DCR_BIN, or ../../target/debug/stateless-dcr relative to this directory."""
    configured = os.environ.get("STATELESS_DCR_BIN")
    path = Path(configured) if configured else HERE / ".." / ".." / "target" / "debug" / "stateless-dcr"
    path = path if path.is_absolute() else (Path.cwd() / path)
    if not path.is_file() or not os.access(path, os.X_OK):
        sys.exit(f"openapi: no executable server binary at {path} (set STATELESS_DCR_BIN)")
    return path.resolve()


def server_environment() -> dict[str, str]:
    """The environment for the server: ours without any STATELESS_DCR_* variable (the server
    reads those as configuration and refuses unknown ones, STATELESS_DCR_BIN included) and
    without RUST_LOG (the configuration's log level applies)."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("STATELESS_DCR_") and k != "RUST_LOG"
    }


def run_cli(binary: Path, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [str(binary), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=server_environment(),
        timeout=60,
    )
    if result.returncode != 0:
        sys.exit(f"openapi: `stateless-dcr {' '.join(args)}` failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout


class Material:
    """A registrar key set and a federation authority, made with the binary's own commands."""

    def __init__(self, binary: Path, directory: Path):
        self.binary = binary
        self.directory = directory
        self.keys = directory / "registrar-keys.json"
        self.authority_private = directory / "authority.private.jwk.json"
        self.authority_jwks = directory / "authority.jwks.json"
        run_cli(binary, "keys", "generate", "--out", str(self.keys))
        run_cli(
            binary,
            "statement",
            "keygen",
            "--private",
            str(self.authority_private),
            "--jwks",
            str(self.authority_jwks),
        )

    def sign_statement(self, claims: dict[str, Any], lifetime: int = 3600) -> str:
        """A software statement signed with `stateless-dcr statement sign`."""
        return run_cli(
            self.binary,
            "statement",
            "sign",
            "--key",
            str(self.authority_private),
            "--claims",
            "-",
            "--issuer",
            AUTHORITY_ISSUER,
            "--lifetime",
            str(lifetime),
            stdin=json.dumps(claims),
        ).strip()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(value)


class Server:
    """`stateless-dcr serve` on a free loopback port with a generated configuration file.

    `options` are top-level options; `tables` maps a table name (`rate_limits`, `policy`, ...)
    to its options; `issuer` adds options to the `[[trusted_issuers]]` entry of the authority
    (`status_list_uris`, ...). The status store lives in the server's own directory.
    """

    def __init__(
        self,
        material: Material,
        name: str,
        options: dict[str, Any] | None = None,
        tables: dict[str, dict[str, Any]] | None = None,
        issuer: dict[str, Any] | None = None,
    ):
        self.material = material
        self.name = name
        self.directory = material.directory / name
        self.directory.mkdir(parents=True, exist_ok=True)
        self.options = options or {}
        self.tables = tables or {}
        self.issuer = issuer or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.log_path = self.directory / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _write_config(self) -> Path:
        top = {
            "listen": f"127.0.0.1:{self.port}",
            "public_url": self.url,
            "keys": str(self.material.keys),
            "resolve_api_tokens": [RESOLVE_TOKEN],
            "max_client_lifetime_secs": 86400,
            "keys_reload_secs": 0,
            "log_level": "warn",
            "workers": 2,
        }
        top.update(self.options)
        lines = [f"{k} = {toml_value(v)}" for k, v in top.items()]
        tables = {"status_store": {"kind": "embedded", "path": str(self.directory / "status.redb")}}
        for table, values in self.tables.items():
            tables.setdefault(table, {}).update(values)
        for table, values in tables.items():
            lines.append(f"\n[{table}]")
            lines.extend(f"{k} = {toml_value(v)}" for k, v in values.items())
        lines.append("\n[[trusted_issuers]]")
        lines.append(f"issuer = {toml_value(AUTHORITY_ISSUER)}")
        lines.append(f"jwks_file = {toml_value(str(self.material.authority_jwks))}")
        lines.extend(f"{k} = {toml_value(v)}" for k, v in self.issuer.items())
        path = self.directory / "config.toml"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self) -> "Server":
        last_error = ""
        for _attempt in range(5):
            self.port = free_port()
            config = self._write_config()
            log = open(self.log_path, "wb")
            self.process = subprocess.Popen(
                [str(self.material.binary), "serve", "--config", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=server_environment(),
                cwd=self.directory,
            )
            log.close()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    break
                try:
                    if requests.get(self.url + "/health/live", timeout=1).status_code == 200:
                        return self
                except requests.RequestException:
                    pass
                time.sleep(0.1)
            last_error = self.log_path.read_text(errors="replace")
            self.stop()
            if "address" not in last_error.lower():  # not a port race: do not retry
                break
        sys.exit(f"openapi: the {self.name} server did not start:\n{last_error}")

    def refused(self) -> str | None:
        """Run `serve` with this configuration when it should refuse to start: its output, or
        None when it started after all (it is then stopped)."""
        self.port = free_port()
        config = self._write_config()
        process = subprocess.Popen(
            [str(self.material.binary), "serve", "--config", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=server_environment(),
            cwd=self.directory,
        )
        try:
            output, _ = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.terminate()
            process.communicate(timeout=15)
            return None
        return None if process.returncode == 0 else output.decode(errors="replace")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Spec:
    """The OpenAPI document, and validators for the JSON Schemas at JSON pointers in it."""

    def __init__(self, path: Path = SPEC_PATH):
        self.path = path
        self.document = yaml.safe_load(path.read_text())
        resource = Resource.from_contents(self.document, default_specification=DRAFT202012)
        self.registry = Registry().with_resource(SPEC_URI, resource)
        self._validators: dict[str, Draft202012Validator] = {}

    def check_document(self) -> None:
        """The document is a valid OpenAPI 3.1 description."""
        from openapi_spec_validator import validate

        validate(self.document)
        # every example of a request or response body fits its own schema
        for path, item in self.document.get("paths", {}).items():
            for method, operation in item.items():
                if not isinstance(operation, dict):
                    continue
                base = f"/paths/{escape(path)}/{method}"
                bodies = [(f"{base}/requestBody", operation.get("requestBody", {}))]
                bodies += [
                    (f"{base}/responses/{status}", response)
                    for status, response in operation.get("responses", {}).items()
                ]
                for pointer, body in bodies:
                    body, pointer = self.deref(body, pointer)
                    for media, content in body.get("content", {}).items():
                        schema = f"{pointer}/content/{escape(media)}/schema"
                        for name, example in content.get("examples", {}).items():
                            errors = list(self.validator(schema).iter_errors(example["value"]))
                            if errors:
                                raise ValueError(f"example {name} of {pointer} does not fit its schema: {errors[0].message}")

    def at(self, pointer: str) -> Any:
        node = self.document
        for part in pointer.lstrip("/").split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            node = node[part]
        return node

    def deref(self, node: Any, pointer: str) -> tuple[Any, str]:
        """Follow an OpenAPI `$ref` (to a response, header or parameter object)."""
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if not ref.startswith("#/"):
                raise ValueError(f"only local references are supported: {ref}")
            pointer = ref[1:]
            node = self.at(pointer)
        return node, pointer

    def validator(self, pointer: str) -> Draft202012Validator:
        if pointer not in self._validators:
            self._validators[pointer] = Draft202012Validator(
                {"$ref": f"{SPEC_URI}#{pointer}"}, registry=self.registry
            )
        return self._validators[pointer]


def escape(token: str) -> str:
    """A JSON pointer reference token."""
    return token.replace("~", "~0").replace("/", "~1")
