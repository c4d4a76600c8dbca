#!/usr/bin/env python3
"""Real responses of stateless-dcr against docs/openapi.yaml.

Starts the server binary (STATELESS_DCR_BIN, default ../../target/debug/stateless-dcr relative
to this file) on free loopback ports with generated configurations, walks a realistic flow
(discovery, jwks, health, registration with a signed software statement, read, update, delete,
resolve, the status lists fetched, verified and decoded after each change, the admin API's
withdrawals, a federation authority's status list withdrawing a statement) and the error
cases, and checks every response's status, headers, content type and body against the
response the operation documents. Each GET is repeated as HEAD, which must answer the same
status and header fields with no body. Exits 1 listing every mismatch.

Usage: python3 check_responses.py [-v]
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import socket
import subprocess
import sys
import time
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from requests.structures import CaseInsensitiveDict

import harness
import status_lists
from harness import ADMIN_TOKEN, RESOLVE_TOKEN, Material, Server, Spec, escape

# media types whose bodies are text, not JSON: the schema describes the body as a string
TEXT_MEDIA = {"application/statuslist+jwt"}


@dataclass
class Observed:
    """One request and its response, however it was sent."""

    method: str
    path: str
    status: int
    headers: CaseInsensitiveDict
    body: bytes
    request_body: bytes = b""

    @classmethod
    def of(cls, response: requests.Response, base: str) -> "Observed":
        request = response.request
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        return cls(
            method=request.method or "",
            path=(request.url or "").removeprefix(base),
            status=response.status_code,
            headers=CaseInsensitiveDict(response.headers),
            body=response.content,
            request_body=body,
        )

    def json(self) -> Any:
        return json.loads(self.body)

    def describe(self) -> str:
        shown_request = self.request_body[:300].decode(errors="replace")
        if len(self.request_body) > 300:
            shown_request += f"... ({len(self.request_body)} bytes)"
        headers = "\n".join(
            f"      {k}: {v}" for k, v in self.headers.items() if k.lower() != "date"
        )
        body = self.body[:600].decode(errors="replace")
        if len(self.body) > 600:
            body += f"... ({len(self.body)} bytes)"
        path = self.path if len(self.path) <= 120 else self.path[:117] + "..."
        text = f"    request: {self.method} {path}"
        if shown_request:
            text += f"\n      {shown_request}"
        return text + f"\n    response: {self.status}\n{headers}\n      {body}"


@dataclass
class Checker:
    spec: Spec
    verbose: bool = False
    checked: int = 0
    failures: list[str] = field(default_factory=list)

    def fail(self, label: str, observed: Observed | None, message: str) -> None:
        text = f"FAIL {label}: {message}"
        if observed is not None:
            text += "\n" + observed.describe()
        self.failures.append(text)
        print(text, flush=True)

    def expect(self, condition: bool, label: str, observed: Observed | None, message: str) -> None:
        self.checked += 1
        if not condition:
            self.fail(label, observed, message)

    def check(
        self,
        label: str,
        observed: Observed,
        operation: tuple[str, str] | None = None,
        component: str | None = None,
        status: int | None = None,
        error: str | None = None,
    ) -> Any:
        """Check `observed` against the response `operation` (path, method) documents for its
        status, or against `#/components/responses/<component>`. Returns the parsed JSON body,
        if any. A HEAD answer must have no body; its Content-Type is checked against the
        documented content, which describes the body a GET would get."""
        self.checked += 1
        problems: list[str] = []
        if status is not None and observed.status != status:
            problems.append(f"expected status {status}, got {observed.status}")
        if operation is not None:
            path, method = operation
            base = f"/paths/{escape(path)}/{method}"
            try:
                responses = self.spec.at(base + "/responses")
            except KeyError:
                self.fail(label, observed, f"{method.upper()} {path} is not described in openapi.yaml")
                return None
            key = next(
                (
                    k
                    for k in (str(observed.status), f"{observed.status // 100}XX", "default")
                    if k in responses
                ),
                None,
            )
            if key is None:
                problems.append(
                    f"status {observed.status} is not documented for {method.upper()} {path} "
                    f"(documented: {', '.join(responses)})"
                )
                self._report(label, observed, problems)
                return None
            response, pointer = self.spec.deref(responses[key], f"{base}/responses/{key}")
        else:
            assert component is not None
            pointer = f"/components/responses/{component}"
            try:
                response, pointer = self.spec.deref(self.spec.at(pointer), pointer)
            except KeyError:
                self.fail(label, observed, f"#{pointer} is not described in openapi.yaml")
                return None

        for name, header in response.get("headers", {}).items():
            header, header_pointer = self.spec.deref(header, f"{pointer}/headers/{escape(name)}")
            value = observed.headers.get(name)
            if value is None:
                if header.get("required"):
                    problems.append(f"the documented header {name} is missing")
                continue
            if "schema" in header:
                for e in self.spec.validator(header_pointer + "/schema").iter_errors(value):
                    problems.append(f"header {name}: {value!r}: {e.message}")

        parsed: Any = None
        content = response.get("content")
        head = observed.method == "HEAD"
        if head and observed.body:
            problems.append(f"a HEAD answer must have no body, got {len(observed.body)} bytes")
        if content:
            content_type = observed.headers.get("Content-Type")
            if not content_type:
                problems.append(
                    f"no Content-Type; documented: {', '.join(content)}"
                )
            else:
                media = content_type.split(";")[0].strip().lower()
                if media not in content:
                    problems.append(
                        f"Content-Type {content_type!r} is not documented (documented: {', '.join(content)})"
                    )
                elif not head:
                    try:
                        parsed = observed.body.decode("ascii") if media in TEXT_MEDIA else observed.json()
                    except ValueError as e:
                        problems.append(f"the body is not {'ASCII text' if media in TEXT_MEDIA else 'JSON'}: {e}")
                    else:
                        schema_pointer = f"{pointer}/content/{escape(media)}/schema"
                        for e in sorted(
                            self.spec.validator(schema_pointer).iter_errors(parsed),
                            key=lambda e: list(e.absolute_path),
                        ):
                            where = "/".join(str(p) for p in e.absolute_path) or "(the body)"
                            problems.append(
                                f"body {where}: {e.message} "
                                f"(schema {schema_pointer} -> {'/'.join(str(p) for p in e.absolute_schema_path)})"
                            )
        elif observed.status in (204, 304) and observed.body:
            problems.append(f"a {observed.status} must have no body")

        if error is not None and not head and not problems:
            got = parsed.get("error") if isinstance(parsed, dict) else None
            if got != error:
                problems.append(f"expected error {error!r}, got {got!r}")
        self._report(label, observed, problems)
        return parsed

    def _report(self, label: str, observed: Observed, problems: list[str]) -> None:
        if problems:
            self.fail(label, observed, "; ".join(problems))
        elif self.verbose:
            print(f"ok   {observed.status} {observed.method} {observed.path[:60]}  ({label})")


class Client:
    """requests against one server, each answer wrapped as an Observed."""

    def __init__(self, server: Server):
        self.base = server.url
        self.session = requests.Session()

    def __call__(self, method: str, path: str, **kwargs: Any) -> Observed:
        url = path if path.startswith("http") else self.base + path
        kwargs.setdefault("timeout", 30)
        kwargs.setdefault("allow_redirects", False)
        return Observed.of(self.session.request(method, url, **kwargs), self.base)

    def raw(self, method: str, path: str, head: dict[str, str], body: bytes, wait: float) -> Observed:
        """A request written by hand on its own connection: the response is read until the
        server closes the connection or `wait` seconds pass."""
        host, port = self.base.removeprefix("http://").split(":")
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}"]
        lines += [f"{k}: {v}" for k, v in head.items()]
        data = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        received = b""
        with socket.create_connection((host, int(port)), timeout=wait) as s:
            s.sendall(data)
            try:
                while chunk := s.recv(65536):
                    received += chunk
            except (TimeoutError, socket.timeout):
                pass
        head_bytes, _, payload = received.partition(b"\r\n\r\n")
        if not head_bytes:
            return Observed(method, path, 0, CaseInsensitiveDict(), b"", body)
        status_line, *header_lines = head_bytes.decode("latin-1").split("\r\n")
        headers = CaseInsensitiveDict()
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip()] = value.strip()
        length = int(headers.get("Content-Length", len(payload)))
        if method == "HEAD":
            length = len(payload)  # Content-Length is that of the GET answer; keep every byte
        return Observed(method, path, int(status_line.split()[1]), headers, payload[:length], body)

    def head(self, path: str, headers: dict[str, str] | None = None) -> Observed:
        """HEAD on its own connection, closed by the server after the answer, so that any byte
        sent after the head is seen (requests never reads the body of a HEAD answer)."""
        path = path.removeprefix(self.base)
        return self.raw("HEAD", path, {**(headers or {}), "Connection": "close"}, b"", wait=10)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# header fields a HEAD answer need not share with its GET: per response, or per connection
# (Client.head asks the server to close)
NOT_COMPARED = {"date", "x-request-id", "connection"}


def check_head(
    c: Checker,
    label: str,
    http: Client,
    get: Observed,
    operation: tuple[str, str],
    headers: dict[str, str] | None = None,
    may_differ: frozenset[str] = frozenset(),
) -> None:
    """HEAD of what `get` asked, checked against the `head` operation of `operation`'s path:
    the same status and header fields as the GET answer (Content-Type and Content-Length
    included), and no body (RFC 9110 §9.3.2). Fields in `may_differ` (lower case) are only
    checked against the description: a status list's `Cache-Control: max-age` counts down."""
    path, _ = operation
    o = http.head(get.path, headers)
    c.check(f"HEAD: {label}", o, (path, "head"), status=get.status)
    skipped = NOT_COMPARED | may_differ
    shown = {k.lower(): v for k, v in get.headers.items() if k.lower() not in skipped}
    answered = {k.lower(): v for k, v in o.headers.items() if k.lower() not in skipped}
    c.expect(
        answered == shown,
        f"HEAD: {label}",
        o,
        f"the header fields differ from those of the GET answer: {shown}",
    )


def statement_claims(**extra: Any) -> dict[str, Any]:
    claims = {
        "software_id": "openapi-check-1",
        "software_version": "1.0",
        "client_name": "OpenAPI Check Client",
        "redirect_uris": ["https://client.example.org/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "client_secret_basic",
        "scope": "openid profile email",
    }
    claims.update(extra)
    return claims


FORBIDDEN_IN_UPDATE = (
    "registration_access_token",
    "registration_client_uri",
    "client_secret_expires_at",
    "client_id_issued_at",
)


def update_body(information: dict[str, Any]) -> dict[str, Any]:
    """A registration or read response made into an update (RFC 7592 §2.2)."""
    return {
        k: v
        for k, v in information.items()
        if k not in FORBIDDEN_IN_UPDATE and k != "software_statement"
    }


# the largest client_id_max_length the configuration allows (the maximum of the Discovery schema)
CLIENT_ID_MAX_LENGTH = 32768

REGISTER = ("/register", "post")
READ = ("/register/{client_id}", "get")
UPDATE = ("/register/{client_id}", "put")
DELETE = ("/register/{client_id}", "delete")
RESOLVE = ("/resolve", "post")
JSON = {"Content-Type": "application/json"}

STATUS_LIST = ("/status-lists/{id}", "get")
AGGREGATION = ("/status-lists", "get")
WITHDRAW = ("/admin/withdrawals", "post")
WITHDRAWALS = ("/admin/withdrawals", "get")
LIFT = ("/admin/withdrawals/{id}", "delete")
# a status list's Cache-Control: max-age counts down between a GET and its HEAD
COUNTS_DOWN = frozenset({"cache-control"})
# the registrar's status list values (docs/api.md, "Status lists")
VALID, INVALID, AMENDED = 0, 1, 3
# [status_lists] of the full server: short, so that changes show quickly
LIST_TTL = 4
LIST_LIFETIME = 60


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a compact JWS, unverified (a client_id, for its `status` claim)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def status_reference(c: Checker, label: str, registered: dict[str, Any], server: Server) -> dict[str, Any] | None:
    """The `status.status_list` of a registered client's client_id: its entry in one of the
    registrar's lists (draft-ietf-oauth-status-list-18 §6.2)."""
    reference = jwt_claims(registered["client_id"]).get("status", {}).get("status_list")
    c.expect(
        isinstance(reference, dict)
        and isinstance(reference.get("idx"), int)
        and str(reference.get("uri", "")).startswith(server.url + "/status-lists/"),
        label,
        None,
        f"the client_id must carry status.status_list with idx and a uri under {server.url}/status-lists/, got {reference!r}",
    )
    return reference if isinstance(reference, dict) else None


class ListReader:
    """Fetches one of the registrar's status lists, checks the answer against the description
    (and its HEAD), and verifies the token as a verifier would: a key of `/jwks`, `typ`, `sub`,
    the times, `ttl`, `bits` (§8.3); then reads an entry."""

    def __init__(self, c: Checker, http: Client, directory: Path, ttl: int, lifetime: int):
        self.c = c
        self.http = http
        self.directory = directory
        self.ttl = ttl
        self.lifetime = lifetime
        jwks = http("GET", "/jwks").json()
        self.keys = {k["kid"]: k for k in jwks.get("keys", [])}
        self.aggregation = http.base + "/status-lists"

    def entries(self, label: str, uri: str, head: bool = False) -> list[int] | None:
        c = self.c
        accept = {"Accept": "application/statuslist+jwt"}  # what a verifier sends (§8.1)
        o = self.http("GET", uri, headers=accept)
        token = c.check(label, o, STATUS_LIST, status=200)
        if head:
            check_head(c, label, self.http, o, STATUS_LIST, accept, may_differ=COUNTS_DOWN)
        if not isinstance(token, str):
            return None
        try:
            header, claims = status_lists.decode_jwt(token)
        except ValueError as e:
            c.fail(label, o, f"the token does not decode: {e}")
            return None
        key = self.keys.get(header.get("kid"))
        c.expect(header.get("typ") == "statuslist+jwt", label, o, f"typ must be statuslist+jwt: {header}")
        c.expect(key is not None and header.get("alg") == key.get("alg"), label, o, f"kid and alg must name a key of /jwks: {header}")
        if key is not None and key.get("kty") == "EC" and status_lists.available():
            c.expect(status_lists.verify_es256(token, key, self.directory), label, o, "the signature does not verify with the /jwks key")
        iat, exp, ttl = claims.get("iat"), claims.get("exp"), claims.get("ttl")
        now = time.time()
        c.expect(claims.get("sub") == uri, label, o, f"sub must be the URI fetched ({uri}): {claims.get('sub')!r}")
        c.expect(
            isinstance(iat, int) and isinstance(exp, int) and iat <= now + 5 and exp - iat == self.lifetime and exp > now,
            label,
            o,
            f"iat, exp must be whole seconds with exp = iat + {self.lifetime}, not past: iat {iat!r}, exp {exp!r}",
        )
        c.expect(ttl == self.ttl, label, o, f"ttl must be {self.ttl}: {ttl!r}")
        max_age = o.headers.get("Cache-Control", "").removeprefix("public, max-age=")
        c.expect(max_age.isdigit() and int(max_age) <= self.ttl, label, o, f"Cache-Control max-age must be at most the ttl {self.ttl}")
        listed = claims.get("status_list", {})
        c.expect(listed.get("bits") == 2, label, o, f"bits must be 2: {listed.get('bits')!r}")
        c.expect(listed.get("aggregation_uri") == self.aggregation, label, o, f"aggregation_uri must be {self.aggregation}")
        try:
            return status_lists.decode_list(listed["lst"], 2)
        except (KeyError, ValueError, TypeError, zlib.error) as e:
            c.fail(label, o, f"lst does not decode (base64url, zlib): {e}")
            return None

    def wait_for(self, label: str, reference: dict[str, Any], value: int, timeout: float = 10) -> None:
        """The entry of `reference` becomes `value` within `timeout` seconds: a change is signed
        again at most every sign_interval_secs, and the answer may be cached up to its ttl."""
        deadline = time.monotonic() + timeout
        while True:
            entries = self.entries(label, reference["uri"])
            got = entries[reference["idx"]] if entries is not None and reference["idx"] < len(entries) else None
            if got == value or entries is None or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.c.expect(got == value, label, None, f"entry {reference['idx']} of {reference['uri']} must become {value}, is {got}")


def full_server_flow(c: Checker, material: Material, server: Server) -> None:
    """management = "full", statements required, the resolve API on."""
    http = Client(server)

    # discovery, keys, health
    documents = []
    for path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
        o = http("GET", path)
        documents.append(c.check(f"discovery {path}", o, (path, "get"), status=200))
        check_head(c, f"discovery {path}", http, o, (path, "get"))
    c.expect(documents[0] == documents[1], "discovery", None, "the two discovery documents differ")
    if documents[0]:
        c.expect(
            documents[0].get("software_statement_required") is True
            and documents[0].get("registration_endpoint") == server.url + "/register"
            and documents[0].get("status_list_aggregation_endpoint") == server.url + "/status-lists",
            "discovery",
            None,
            f"unexpected discovery document: {documents[0]}",
        )
    for label, path in (("jwks", "/jwks"), ("liveness", "/health/live"), ("readiness", "/health/ready")):
        o = http("GET", path)
        c.check(label, o, (path, "get"), status=200)
        check_head(c, label, http, o, (path, "get"))
    lists = ListReader(c, http, material.directory, LIST_TTL, LIST_LIFETIME)

    # registration with a statement, plus members the statement does not set, a localized name
    # and an unknown member (ignored)
    statement = material.sign_statement(statement_claims())
    o = http(
        "POST",
        "/register",
        json={
            "software_statement": statement,
            "contacts": ["ops@client.example.org"],
            "client_name": "overridden by the statement",
            "client_name#ja-Jpan-JP": "チェック",
            "x_unknown_member": {"ignored": [1, 2, 3]},
            "client_id": "chosen-by-the-client (ignored)",
        },
    )
    registered = c.check("registration with a software statement", o, REGISTER, status=201)
    if not isinstance(registered, dict) or "registration_client_uri" not in registered:
        c.fail("registration", o, "cannot go on without a registered client")
        return
    c.expect(registered.get("software_statement") == statement, "registration", o, "the statement is not echoed")
    c.expect(registered.get("client_name") == "OpenAPI Check Client", "registration", o, "the statement does not win")
    c.expect(registered.get("client_name#ja-Jpan-JP") == "チェック", "registration", o, "the localized name is lost")
    uri = registered["registration_client_uri"]
    token = registered["registration_access_token"]
    client_id = registered["client_id"]
    c.expect(uri == f"{server.url}/register/{client_id}", "registration", o, "unexpected registration_client_uri")

    # the client_id is a Referenced Token: its entry in the registrar's list is VALID
    reference = status_reference(c, "registration", registered, server)
    if reference is not None:
        entries = lists.entries("the status list of a new client", reference["uri"], head=True)
        got = entries[reference["idx"]] if entries and reference["idx"] < len(entries) else None
        c.expect(got == VALID, "the status list of a new client", None, f"entry {reference['idx']} must be 0 (VALID), is {got}")
        o = http("GET", "/status-lists")
        aggregation = c.check("the status list aggregation", o, AGGREGATION, status=200)
        check_head(c, "the status list aggregation", http, o, AGGREGATION)
        c.expect(
            isinstance(aggregation, dict) and reference["uri"] in aggregation.get("status_lists", []),
            "the status list aggregation",
            o,
            f"the aggregation must list {reference['uri']}",
        )
        # readable from any origin (draft-ietf-oauth-status-list-18 §8.1)
        origin = {"Origin": "https://verifier.example"}
        o = http("GET", reference["uri"], headers=origin)
        c.check("a status list from a browser origin", o, STATUS_LIST, status=200)
        c.expect(o.headers.get("Access-Control-Allow-Origin") == origin["Origin"], "a status list from a browser origin", o, "the origin is not echoed")
        o = http("OPTIONS", reference["uri"], headers={**origin, "Access-Control-Request-Method": "GET"})
        c.expect(
            o.status == 200 and o.headers.get("Access-Control-Allow-Origin") == origin["Origin"] and "GET" in o.headers.get("Access-Control-Allow-Methods", ""),
            "CORS preflight of a status list",
            o,
            "a preflight for GET must be allowed, echoing the origin",
        )

    # read
    o = http("GET", uri, headers=bearer(token))
    read = c.check("read", o, READ, status=200)
    c.expect(isinstance(read, dict) and read.get("client_id") == client_id, "read", o, "another client_id")
    check_head(c, "read", http, o, READ, bearer(token))

    # update: new contacts and a logo; the token rotates
    body = update_body(registered)
    body["contacts"] = ["security@client.example.org"]
    body["logo_uri"] = "https://client.example.org/logo.png"
    o = http("PUT", uri, headers=bearer(token), json=body)
    updated = c.check("update", o, UPDATE, status=200)
    new_token = updated.get("registration_access_token") if isinstance(updated, dict) else None
    c.expect(bool(new_token) and new_token != token, "update", o, "the registration access token did not rotate")
    c.expect(
        isinstance(updated, dict) and "software_statement" not in updated,
        "update",
        o,
        "an update without a statement echoes one",
    )
    old_token, token = token, new_token or token
    if reference is not None:
        lists.wait_for("the status list after the update", reference, AMENDED)

    o = http("GET", uri, headers=bearer(token))
    c.check("read with the new token", o, READ, status=200)
    check_head(c, "read with the new token", http, o, READ, bearer(token))
    o = http("GET", uri, headers=bearer(old_token))
    c.check("read with the token from before the update", o, READ, status=401, error="invalid_token")
    check_head(c, "read with the token from before the update", http, o, READ, bearer(old_token))
    o = http("GET", uri)
    c.check("read without a token", o, READ, status=401, error="invalid_token")
    c.expect(o.headers.get("WWW-Authenticate") == 'Bearer realm="stateless-dcr"', "read without a token", o, "the challenge must carry no error code (RFC 6750 §3.1)")
    check_head(c, "read without a token", http, o, READ)
    o = http("GET", uri, headers=bearer("x" * 43))
    c.check("read with a wrong token", o, READ, status=401, error="invalid_token")
    check_head(c, "read with a wrong token", http, o, READ, bearer("x" * 43))
    o = http("GET", "/register/not-a-client-id", headers=bearer(token))
    c.check("read of a garbage client_id", o, READ, status=401, error="invalid_token")
    check_head(c, "read of a garbage client_id", http, o, READ, bearer(token))
    c.check("read of an empty client_id", http("GET", "/register/", headers=bearer(token)), READ, status=401, error="invalid_token")

    # update presenting a new statement (same issuer): it is echoed
    second = material.sign_statement(statement_claims(client_name="Renamed by a new statement"))
    body = update_body(updated if isinstance(updated, dict) else registered)
    body["software_statement"] = second
    o = http("PUT", uri, headers=bearer(token), json=body)
    again = c.check("update with a new statement", o, UPDATE, status=200)
    if isinstance(again, dict):
        c.expect(again.get("software_statement") == second, "update with a new statement", o, "the new statement is not echoed")
        c.expect(again.get("client_name") == "Renamed by a new statement", "update with a new statement", o, "the new statement does not win")
        token = again.get("registration_access_token", token)

    # update errors
    c.check("update without a token", http("PUT", uri, json=body), UPDATE, status=401, error="invalid_token")
    bad = dict(body, registration_access_token=token)
    c.check("update with a forbidden member", http("PUT", uri, headers=bearer(token), json=bad), UPDATE, status=400, error="invalid_client_metadata")
    bad = {k: v for k, v in body.items() if k != "client_id"}
    c.check("update without client_id", http("PUT", uri, headers=bearer(token), json=bad), UPDATE, status=400, error="invalid_client_metadata")
    bad = dict(update_body(registered), client_name="changed without a statement")
    c.check("update of a member fixed by the statement", http("PUT", uri, headers=bearer(token), json=bad), UPDATE, status=400, error="invalid_client_metadata")
    c.check("update with a body that is not JSON", http("PUT", uri, headers={**bearer(token), **JSON}, data=b"{"), UPDATE, status=400, error="invalid_client_metadata")

    # resolve
    secret = registered.get("client_secret")
    o = http(
        "POST",
        "/resolve",
        headers=bearer(RESOLVE_TOKEN),
        json={
            "client_id": client_id,
            "redirect_uri": "https://client.example.org/callback",
            "response_type": "code",
            "grant_type": "authorization_code",
            "client_secret": secret,
        },
    )
    answer = c.check("resolve a valid client", o, RESOLVE, status=200)
    c.expect(
        isinstance(answer, dict) and answer.get("valid") is True and answer.get("authenticated") is True,
        "resolve a valid client",
        o,
        "expected valid and authenticated",
    )
    for label, query, code in (
        ("resolve an unregistered redirect_uri", {"redirect_uri": "https://evil.example/cb"}, "invalid_redirect_uri"),
        ("resolve an unregistered response_type", {"response_type": "token"}, "unsupported_response_type"),
        ("resolve an unregistered grant_type", {"grant_type": "client_credentials"}, "unauthorized_client"),
        ("resolve a wrong secret", {"client_secret": "wrong"}, "invalid_client"),
    ):
        o = http("POST", "/resolve", headers=bearer(RESOLVE_TOKEN), json={"client_id": client_id, **query})
        answer = c.check(label, o, RESOLVE, status=200)
        c.expect(isinstance(answer, dict) and answer.get("error") == code, label, o, f"expected valid false with {code}")
    o = http("POST", "/resolve", headers=bearer(RESOLVE_TOKEN), json={"client_id": "garbage"})
    answer = c.check("resolve a garbage client_id", o, RESOLVE, status=200)
    c.expect(isinstance(answer, dict) and answer.get("error") == "invalid_client", "resolve garbage", o, "expected invalid_client")
    c.check("resolve without the API token", http("POST", "/resolve", json={"client_id": client_id}), RESOLVE, status=401, error="invalid_token")
    c.check("resolve with a wrong API token", http("POST", "/resolve", headers=bearer("y" * 40), json={"client_id": client_id}), RESOLVE, status=401, error="invalid_token")
    c.check("resolve without client_id", http("POST", "/resolve", headers=bearer(RESOLVE_TOKEN), json={}), RESOLVE, status=400, error="invalid_request")
    c.check("resolve with a member that is not a string", http("POST", "/resolve", headers=bearer(RESOLVE_TOKEN), json={"client_id": 7}), RESOLVE, status=400, error="invalid_request")
    c.check(
        "resolve with a body that is not application/json",
        http("POST", "/resolve", headers={**bearer(RESOLVE_TOKEN), "Content-Type": "text/plain"}, data=json.dumps({"client_id": client_id})),
        RESOLVE,
        status=400,
        error="invalid_request",
    )

    # delete; afterwards the client is gone everywhere
    o = http("DELETE", uri, headers=bearer(token))
    c.check("delete", o, DELETE, status=204)
    o = http("GET", uri, headers=bearer(token))
    c.check("read after the delete", o, READ, status=401, error="invalid_token")
    check_head(c, "read after the delete", http, o, READ, bearer(token))
    c.check("delete again", http("DELETE", uri, headers=bearer(token)), DELETE, status=401, error="invalid_token")
    o = http("POST", "/resolve", headers=bearer(RESOLVE_TOKEN), json={"client_id": client_id})
    answer = c.check("resolve a deleted client", o, RESOLVE, status=200)
    c.expect(isinstance(answer, dict) and answer.get("error") == "invalid_client", "resolve a deleted client", o, "expected invalid_client")
    if reference is not None:
        lists.wait_for("the status list after the delete", reference, INVALID)

    # lists that do not exist, and the other methods on the lists
    for path in ("/status-lists/999999", "/status-lists/01", "/status-lists/x", "/status-lists/-1", "/status-lists/"):
        o = http("GET", path)
        operation = STATUS_LIST if path != "/status-lists/" else None
        if operation is None:
            c.check(f"GET {path}", o, component="NotFound", status=404, error="not_found")
            continue
        c.check(f"GET {path}", o, operation, status=404, error="not_found")
        check_head(c, f"GET {path}", http, o, operation)
    # only the JWT form is offered (draft-ietf-oauth-status-list-18 §8.1)
    for accept, code in (
        ("application/statuslist+jwt", 200),
        ("text/html, application/statuslist+jwt;q=0.5", 200),
        ("application/*", 200),
        ("application/statuslist+cwt", 406),
        ("application/json", 406),
        ("application/statuslist+jwt;q=0", 406),
    ):
        label = f"a status list with Accept: {accept}"
        o = http("GET", "/status-lists/0", headers={"Accept": accept})
        c.check(label, o, STATUS_LIST, status=code, error=None if code == 200 else "invalid_request")
        check_head(c, label, http, o, STATUS_LIST, {"Accept": accept}, may_differ=COUNTS_DOWN)
    for path in ("/status-lists", "/status-lists/0"):
        for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
            o = http(method, path)
            c.check(f"{method} {path}", o, component="ReadOnlyMethodNotAllowed", status=405, error="invalid_request")

    admin_flow(c, material, server, http)

    # registration errors
    c.check("registration without a statement", http("POST", "/register", json={"redirect_uris": ["https://a.example/cb"]}), REGISTER, status=400, error="invalid_software_statement")
    c.check("registration with a statement that is not a string", http("POST", "/register", json={"software_statement": 1}), REGISTER, status=400, error="invalid_software_statement")
    c.check("registration with a malformed statement", http("POST", "/register", json={"software_statement": "a.b.c"}), REGISTER, status=400, error="invalid_software_statement")
    untrusted = harness.run_cli(
        material.binary, "statement", "sign", "--key", str(material.authority_private), "--claims", "-",
        "--issuer", "https://untrusted.example", "--lifetime", "600", stdin=json.dumps(statement_claims()),
    ).strip()
    c.check("registration with a statement of an untrusted issuer", http("POST", "/register", json={"software_statement": untrusted}), REGISTER, status=400, error="unapproved_software_statement")
    bad_redirect = material.sign_statement(statement_claims(redirect_uris=["http://rp.example/cb"]))
    c.check("registration with an http redirect URI", http("POST", "/register", json={"software_statement": bad_redirect}), REGISTER, status=400, error="invalid_redirect_uri")
    bad_metadata = material.sign_statement(statement_claims(grant_types=["implicit"], response_types=["code"]))
    c.check("registration with inconsistent grant and response types", http("POST", "/register", json={"software_statement": bad_metadata}), REGISTER, status=400, error="invalid_client_metadata")
    c.check("registration with a body that is not JSON", http("POST", "/register", headers=JSON, data=b'{"software_statement": '), REGISTER, status=400, error="invalid_client_metadata")
    c.check("registration with a JSON array", http("POST", "/register", headers=JSON, data=b"[]"), REGISTER, status=400, error="invalid_client_metadata")
    c.check("registration with invalid UTF-8", http("POST", "/register", headers=JSON, data=b'{"a":"\xff"}'), REGISTER, status=400, error="invalid_client_metadata")
    c.check("registration without a content type", http("POST", "/register", data=json.dumps({"software_statement": statement})), REGISTER, status=400, error="invalid_client_metadata")
    # a signed request whose claims carry no statement of their own: nothing fixes its keys
    c.check("a statement posted as a signed request", http("POST", "/register", headers={"Content-Type": "application/jwt"}, data=statement), REGISTER, status=400, error="invalid_software_statement")
    c.check("a signed request that is not a JWS", http("POST", "/register", headers={"Content-Type": "application/jose"}, data=b"not-a-jws"), REGISTER, status=400, error="invalid_client_metadata")
    c.check("registration with charset latin1", http("POST", "/register", headers={"Content-Type": "application/json; charset=latin1"}, data=b"{}"), REGISTER, status=400, error="invalid_client_metadata")
    oversized = json.dumps({"software_statement": statement, "padding": "x" * 70000}).encode()
    c.check("registration with an oversized body", http("POST", "/register", headers=JSON, data=oversized), REGISTER, status=413, error="invalid_request")
    c.check("resolve with an oversized body", http("POST", "/resolve", headers={**bearer(RESOLVE_TOKEN), **JSON}, data=oversized), RESOLVE, status=413, error="invalid_request")
    o = http.raw(
        "POST",
        "/register",
        {"Content-Type": "application/json", "Content-Length": "100"},
        b'{"software_statement": ',
        wait=server.options.get("request_timeout_secs", 10) + 10,
    )
    c.check("registration whose body never arrives", o, REGISTER, status=408, error="invalid_request")

    # methods
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        o = http(method, "/register")
        c.check(f"{method} /register", o, ("/register", method.lower()), status=405, error="invalid_request")
    c.check("HEAD /register", http.head("/register"), component="RegistrationMethodNotAllowed", status=405)
    o = http("OPTIONS", "/register")
    c.check("OPTIONS /register without a preflight", o, ("/register", "options"), status=405, error="invalid_request")
    for method in ("POST", "PATCH", "OPTIONS"):
        o = http(method, uri, headers=bearer(token), json={})
        c.check(f"{method} /register/{{client_id}}", o, ("/register/{client_id}", method.lower()), status=405, error="invalid_request")
        c.expect(o.headers.get("Allow") == "GET, HEAD, PUT, DELETE", f"{method} /register/{{client_id}}", o, "Allow must be GET, HEAD, PUT, DELETE")
    origin = {"Origin": "https://rp.example.org"}
    o = http("OPTIONS", "/register", headers={**origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
    c.check("CORS preflight of /register", o, ("/register", "options"), status=200)
    c.expect(o.body == b"", "CORS preflight of /register", o, "an accepted preflight has an empty body")
    o = http("OPTIONS", uri, headers={**origin, "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "authorization, content-type"})
    c.check("CORS preflight of /register/{client_id}", o, ("/register/{client_id}", "options"), status=200)
    c.expect(o.body == b"", "CORS preflight of /register/{client_id}", o, "an accepted preflight has an empty body")
    for path, operation in (("/register", ("/register", "options")), (uri, ("/register/{client_id}", "options"))):
        shown = "/register" if path == "/register" else "/register/{client_id}"
        for label, asked in (
            ("PATCH", {"Access-Control-Request-Method": "PATCH"}),
            ("TRACE", {"Access-Control-Request-Method": "TRACE", "Access-Control-Request-Headers": "authorization"}),
        ):
            o = http("OPTIONS", path, headers={**origin, **asked})
            c.check(f"CORS preflight of {shown} asking for {label}", o, operation, status=400, error="invalid_request")
            c.expect(
                not any(k.lower().startswith("access-control-allow-") for k in o.headers),
                f"CORS preflight of {shown} asking for {label}",
                o,
                "a refused preflight allows nothing",
            )
    # any request header may be asked for (the MCP SDK adds MCP-Protocol-Version): no cookies here
    o = http("OPTIONS", "/register", headers={**origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type, mcp-protocol-version, x-foo"})
    c.check("CORS preflight of /register with headers of the client's own", o, ("/register", "options"), status=200)
    c.expect("mcp-protocol-version" in o.headers.get("Access-Control-Allow-Headers", "").lower(), "CORS preflight of /register with headers of the client's own", o, "the asked headers must be allowed")
    o = http("POST", "/register", headers={**origin, **JSON}, data=b"{}")
    c.check("registration from a browser origin", o, REGISTER, status=400, error="invalid_software_statement")
    c.expect(o.headers.get("Access-Control-Allow-Origin") == origin["Origin"], "CORS", o, "the origin is not echoed")

    # other methods on the GET resources: 405 with Allow; OPTIONS too, unless it is a CORS
    # preflight of a public document (discovery and /jwks are readable from browsers)
    public_documents = ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server", "/jwks")
    for path in public_documents + ("/health/live", "/health/ready"):
        for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
            preflight = method == "OPTIONS" and path not in public_documents
            headers = {**origin, "Access-Control-Request-Method": "GET"} if preflight else {}
            o = http(method, path, headers=headers)
            c.check(f"{method} {path}", o, component="ReadOnlyMethodNotAllowed", status=405, error="invalid_request")
    for path in public_documents:
        o = http("OPTIONS", path, headers={**origin, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "mcp-protocol-version"})
        c.expect(
            o.status == 200 and o.headers.get("Access-Control-Allow-Origin") == origin["Origin"],
            f"CORS preflight of {path}",
            o,
            "a preflight for GET with the MCP SDK's header must be allowed, echoing the origin",
        )
        o = http("GET", path, headers=origin)
        c.expect(o.headers.get("Access-Control-Allow-Origin") == origin["Origin"], f"{path} from a browser origin", o, "the origin is not echoed")

    # unknown paths, and methods but POST on /resolve
    for method, path in (
        ("GET", "/no/such/path"),
        ("GET", "/jwks/"),
        ("GET", "/.well-known/openid-configuration/"),
        ("GET", "/health"),
        ("GET", "/resolve"),
        ("PUT", "/resolve"),
        ("GET", "/metrics"),
    ):
        c.check(f"{method} {path}", http(method, path), component="NotFound", status=404, error="not_found")
    for path in ("/resolve", "/no/such/path"):
        c.check(f"HEAD {path}", http.head(path), component="NotFound", status=404)


def admin_flow(c: Checker, material: Material, server: Server, http: Client) -> None:
    """The admin API: a suspension of a software_id refuses its clients until it is lifted, a
    permanent withdrawal cannot be lifted nor become a suspension, and the error cases."""
    admin = bearer(ADMIN_TOKEN)
    o = http("GET", "/admin/withdrawals", headers=admin)
    listed = c.check("the withdrawals, none yet", o, WITHDRAWALS, status=200)
    c.expect(listed == {"withdrawals": []}, "the withdrawals, none yet", o, "expected no withdrawal")
    for label, headers in (("without a token", {}), ("with a wrong token", bearer("z" * 43)), ("with the resolve token", bearer(RESOLVE_TOKEN))):
        o = http("GET", "/admin/withdrawals", headers=headers)
        c.check(f"the withdrawals {label}", o, WITHDRAWALS, status=401, error="invalid_token")
        o = http("POST", "/admin/withdrawals", headers=headers, json={"issuer": harness.AUTHORITY_ISSUER, "software_id": "x"})
        c.check(f"a withdrawal {label}", o, WITHDRAW, status=401, error="invalid_token")
        o = http("DELETE", "/admin/withdrawals/AAAAAAAAAAAAAAAAAAAAAA", headers=headers)
        c.check(f"a lift {label}", o, LIFT, status=401, error="invalid_token")

    # a client of its own software_id, then suspended
    software_id = "openapi-check-withdrawn"
    statement = material.sign_statement(statement_claims(software_id=software_id))
    registered = c.check("registration of the client to withdraw", http("POST", "/register", json={"software_statement": statement}), REGISTER, status=201)
    if not isinstance(registered, dict) or "registration_client_uri" not in registered:
        return
    uri, token = registered["registration_client_uri"], registered["registration_access_token"]
    resolve = {"client_id": registered["client_id"]}

    def refused(label: str, why: str) -> None:
        o = http("GET", uri, headers=bearer(token))
        c.check(f"read of a client {label}", o, READ, status=401, error="invalid_token")
        o = http("POST", "/resolve", headers=bearer(RESOLVE_TOKEN), json=resolve)
        answer = c.check(f"resolve a client {label}", o, RESOLVE, status=200)
        c.expect(
            isinstance(answer, dict) and answer.get("error") == "invalid_client" and why in answer.get("error_description", ""),
            f"resolve a client {label}",
            o,
            f"expected invalid_client saying {why!r}",
        )

    def accepted(label: str) -> None:
        c.check(f"read of a client {label}", http("GET", uri, headers=bearer(token)), READ, status=200)
        o = http("POST", "/resolve", headers=bearer(RESOLVE_TOKEN), json=resolve)
        answer = c.check(f"resolve a client {label}", o, RESOLVE, status=200)
        c.expect(isinstance(answer, dict) and answer.get("valid") is True, f"resolve a client {label}", o, "expected valid")

    accepted("before any withdrawal")
    request = {"issuer": harness.AUTHORITY_ISSUER, "software_id": software_id, "status": "suspended", "reason": "an OpenAPI check"}
    o = http("POST", "/admin/withdrawals", headers=admin, json=request)
    suspension = c.check("a suspension", o, WITHDRAW, status=201)
    if not isinstance(suspension, dict) or "id" not in suspension:
        return
    c.expect(
        {k: suspension.get(k) for k in request} == request and isinstance(suspension.get("created_at"), int),
        "a suspension",
        o,
        "the answer must repeat the request, with an id and created_at",
    )
    refused("whose software is suspended", "withdrawn by the operator (suspended)")
    o = http("GET", "/admin/withdrawals", headers=admin)
    listed = c.check("the withdrawals, one suspension", o, WITHDRAWALS, status=200)
    c.expect(isinstance(listed, dict) and listed.get("withdrawals") == [suspension], "the withdrawals, one suspension", o, "expected the suspension")
    o = http("POST", "/admin/withdrawals", headers=admin, json=request)
    again = c.check("the same suspension again", o, WITHDRAW, status=201)
    c.expect(isinstance(again, dict) and again.get("id") == suspension["id"], "the same suspension again", o, "the same target must have the same id")
    o = http("DELETE", f"/admin/withdrawals/{suspension['id']}", headers=admin)
    c.check("lift the suspension", o, LIFT, status=204)
    accepted("whose suspension was lifted")
    o = http("DELETE", f"/admin/withdrawals/{suspension['id']}", headers=admin)
    c.check("lift it again", o, LIFT, status=404, error="not_found")

    # permanent: cannot be lifted nor become a suspension
    o = http("POST", "/admin/withdrawals", headers=admin, json={"issuer": harness.AUTHORITY_ISSUER, "software_id": software_id})
    permanent = c.check("a permanent withdrawal", o, WITHDRAW, status=201)
    c.expect(isinstance(permanent, dict) and permanent.get("status") == "invalid", "a permanent withdrawal", o, "the default status must be invalid")
    refused("whose software is withdrawn", "withdrawn by the operator (invalid)")
    o = http("POST", "/admin/withdrawals", headers=admin, json=request)
    c.check("a suspension over a permanent withdrawal", o, WITHDRAW, status=409, error="invalid_request")
    if isinstance(permanent, dict) and "id" in permanent:
        o = http("DELETE", f"/admin/withdrawals/{permanent['id']}", headers=admin)
        c.check("lift a permanent withdrawal", o, LIFT, status=409, error="invalid_request")
    c.check("lift an unknown withdrawal", http("DELETE", "/admin/withdrawals/AAAAAAAAAAAAAAAAAAAAAA", headers=admin), LIFT, status=404, error="not_found")
    o = http(
        "POST",
        "/admin/withdrawals",
        headers=admin,
        json={"issuer": harness.AUTHORITY_ISSUER, "statement_jti": "openapi-check-no-such-statement", "registered_before": 1_700_000_000, "status": None, "reason": None},
    )
    by_jti = c.check("a withdrawal of a statement, with a time bound", o, WITHDRAW, status=201)
    c.expect(
        isinstance(by_jti, dict) and by_jti.get("registered_before") == 1_700_000_000 and "reason" not in by_jti,
        "a withdrawal of a statement, with a time bound",
        o,
        "expected registered_before and no reason",
    )
    o = http("GET", "/admin/withdrawals", headers=admin)
    listed = c.check("the withdrawals, two permanent", o, WITHDRAWALS, status=200)
    c.expect(
        isinstance(listed, dict) and len(listed.get("withdrawals", [])) == 2 and all(w.get("status") == "invalid" for w in listed["withdrawals"]),
        "the withdrawals, two permanent",
        o,
        "expected the two permanent withdrawals",
    )

    # malformed requests
    for label, body in (
        ("without issuer", {"software_id": "x"}),
        ("with both targets", {"issuer": "i", "software_id": "x", "statement_jti": "y"}),
        ("without a target", {"issuer": "i"}),
        ("with an empty software_id", {"issuer": "i", "software_id": ""}),
        ("with a number for software_id", {"issuer": "i", "software_id": 7}),
        ("with an unknown status", {"issuer": "i", "software_id": "x", "status": "revoked"}),
        ("with a negative registered_before", {"issuer": "i", "software_id": "x", "registered_before": -1}),
        ("with a reason of 501 characters", {"issuer": "i", "software_id": "x", "reason": "r" * 501}),
        ("with an unknown member", {"issuer": "i", "software_id": "x", "client_id": "y"}),
    ):
        c.check(f"a withdrawal {label}", http("POST", "/admin/withdrawals", headers=admin, json=body), WITHDRAW, status=400, error="invalid_request")
    for label, headers, data in (
        ("that is not JSON", JSON, b"{"),
        ("that is a JSON array", JSON, b"[]"),
        ("that is not application/json", {"Content-Type": "text/plain"}, b'{"issuer": "i", "software_id": "x"}'),
    ):
        c.check(f"a withdrawal {label}", http("POST", "/admin/withdrawals", headers={**admin, **headers}, data=data), WITHDRAW, status=400, error="invalid_request")
    oversized = json.dumps({"issuer": "i", "software_id": "x", "reason": "x" * 70000}).encode()
    c.check("a withdrawal with an oversized body", http("POST", "/admin/withdrawals", headers={**admin, **JSON}, data=oversized), WITHDRAW, status=413, error="invalid_request")
    o = http.raw(
        "POST",
        "/admin/withdrawals",
        {**admin, "Content-Type": "application/json", "Content-Length": "100"},
        b'{"issuer": ',
        wait=server.options.get("request_timeout_secs", 10) + 10,
    )
    c.check("a withdrawal whose body never arrives", o, WITHDRAW, status=408, error="invalid_request")


def admin_off(c: Checker, http: Client, label: str) -> None:
    """The admin API answers 404 where it is off."""
    for method, path, operation in (
        ("GET", "/admin/withdrawals", WITHDRAWALS),
        ("POST", "/admin/withdrawals", WITHDRAW),
        ("DELETE", "/admin/withdrawals/AAAAAAAAAAAAAAAAAAAAAA", LIFT),
    ):
        kwargs: dict[str, Any] = {"headers": bearer(ADMIN_TOKEN)}
        if method == "POST":
            kwargs["json"] = {"issuer": harness.AUTHORITY_ISSUER, "software_id": "x"}
        c.check(f"{method} {path} {label}", http(method, path, **kwargs), operation, status=404, error="not_found")


def lists_off(c: Checker, http: Client, document: Any, label: str) -> None:
    """No status lists where they are not published."""
    c.expect(
        isinstance(document, dict) and "status_list_aggregation_endpoint" not in document,
        f"discovery {label}",
        None,
        "status_list_aggregation_endpoint must be absent",
    )
    for path, operation in (("/status-lists", AGGREGATION), ("/status-lists/0", STATUS_LIST)):
        o = http("GET", path)
        c.check(f"GET {path} {label}", o, operation, status=404, error="not_found")
        check_head(c, f"GET {path} {label}", http, o, operation)


def open_none_flow(c: Checker, material: Material, server: Server) -> None:
    """Open registration, management = "none", a per-address registration limit of one, the
    resolve API off."""
    http = Client(server)
    document = c.check("discovery (open registration)", http("GET", "/.well-known/openid-configuration"), ("/.well-known/openid-configuration", "get"), status=200)
    c.expect(isinstance(document, dict) and document.get("software_statement_required") is False, "discovery", None, "software_statement_required must be false")
    o = http(
        "POST",
        "/register",
        json={
            "application_type": "native",
            "redirect_uris": ["com.example.app:/cb", "http://127.0.0.1/cb"],
            "token_endpoint_auth_method": "none",
            "client_name": "Native",
            "client_name#ja-Jpan-JP": "ネイティブ",
            "client_uri#fr": "https://client.example.org/fr",
            "software_statement": None,
        },
    )
    registered = c.check("open registration of a native public client", o, REGISTER, status=201)
    if isinstance(registered, dict):
        for member in ("client_secret", "registration_access_token", "registration_client_uri", "software_statement"):
            c.expect(member not in registered, "open registration", o, f"{member} must be absent")
    o = http("POST", "/register", json={"redirect_uris": ["https://client.example.org/cb"]})
    c.check("registration over the per-address limit", o, REGISTER, status=429, error="too_many_requests")
    for method in ("GET", "HEAD", "PUT", "DELETE", "POST"):
        if method == "HEAD":
            o = http.head("/register/anything", bearer("t" * 43))
        else:
            o = http(method, "/register/anything", headers=bearer("t" * 43))
        c.check(f"{method} /register/{{client_id}} with management none", o, ("/register/{client_id}", method.lower()), status=405, error="invalid_request")
        c.expect(o.headers.get("Allow") == "", "management none", o, "Allow must be empty")
    o = http("POST", "/resolve", headers=bearer(RESOLVE_TOKEN), json={"client_id": "x"})
    c.check("resolve while the API is off", o, RESOLVE, status=404, error="not_found")
    c.check("readiness without a store", http("GET", "/health/ready"), ("/health/ready", "get"), status=200)
    admin_off(c, http, "without admin_api_tokens")
    lists_off(c, http, document, "with management none")
    if isinstance(registered, dict):
        c.expect("status" not in jwt_claims(registered["client_id"]), "open registration", o, "a client_id of management none has no status claim")


def read_only_flow(c: Checker, material: Material, server: Server) -> None:
    """management = "read-only", and the longest client_ids allowed."""
    http = Client(server)
    document = c.check("discovery (read-only)", http("GET", "/.well-known/openid-configuration"), ("/.well-known/openid-configuration", "get"), status=200)
    c.expect(
        isinstance(document, dict) and document.get("client_id_max_length") == CLIENT_ID_MAX_LENGTH,
        "discovery (read-only)",
        None,
        f"client_id_max_length must be {CLIENT_ID_MAX_LENGTH}",
    )
    statement = material.sign_statement(statement_claims(token_endpoint_auth_method="client_secret_post"))
    registered = c.check("registration (read-only)", http("POST", "/register", json={"software_statement": statement}), REGISTER, status=201)
    admin_off(c, http, "with management read-only")
    lists_off(c, http, document, "with management read-only")
    if not isinstance(registered, dict) or "registration_client_uri" not in registered:
        return
    c.expect("status" not in jwt_claims(registered["client_id"]), "registration (read-only)", None, "a client_id of management read-only has no status claim")
    uri, token = registered["registration_client_uri"], registered["registration_access_token"]
    o = http("GET", uri, headers=bearer(token))
    c.check("read (read-only)", o, READ, status=200)
    check_head(c, "read (read-only)", http, o, READ, bearer(token))
    o = http("GET", uri)
    c.check("read without a token (read-only)", o, READ, status=401, error="invalid_token")
    check_head(c, "read without a token (read-only)", http, o, READ)
    for method, operation in (("PUT", UPDATE), ("DELETE", DELETE), ("POST", ("/register/{client_id}", "post"))):
        o = http(method, uri, headers=bearer(token), json=update_body(registered))
        c.check(f"{method} with management read-only", o, operation, status=405, error="invalid_request")
        c.expect(o.headers.get("Allow") == "GET, HEAD", "read-only", o, "Allow must be GET, HEAD")


def store_outage_flow(c: Checker, material: Material) -> None:
    """A Redis status store that goes away: the configuration endpoint, `POST /resolve` and
    readiness answer 503, registration goes on. Skipped without a `redis-server` binary."""
    redis = shutil.which("redis-server")
    if redis is None:
        print("openapi: no redis-server on PATH; the status store outage (503) is not checked")
        return
    port = harness.free_port()
    process = subprocess.Popen(
        [redis, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        cwd=material.directory,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        store = {
            "kind": "redis",
            "redis_url": f"redis://127.0.0.1:{port}/",
            "redis_timeout_ms": 500,
            "cache_ttl_secs": 1,
        }
        with Server(material, "redis", options={"admin_api_tokens": [ADMIN_TOKEN]}, tables={"status_store": store}) as server:
            http = Client(server)
            c.check("readiness with Redis", http("GET", "/health/ready"), ("/health/ready", "get"), status=200)
            statement = material.sign_statement(statement_claims())
            registered = c.check("registration (Redis)", http("POST", "/register", json={"software_statement": statement}), REGISTER, status=201)
            process.terminate()
            process.wait(timeout=10)
            if not isinstance(registered, dict) or "registration_client_uri" not in registered:
                return
            uri, token = registered["registration_client_uri"], registered["registration_access_token"]
            o = http("GET", uri, headers=bearer(token))
            c.check("read while the store is down", o, READ, status=503, error="temporarily_unavailable")
            check_head(c, "read while the store is down", http, o, READ, bearer(token))
            c.check("update while the store is down", http("PUT", uri, headers=bearer(token), json=update_body(registered)), UPDATE, status=503, error="temporarily_unavailable")
            c.check("delete while the store is down", http("DELETE", uri, headers=bearer(token)), DELETE, status=503, error="temporarily_unavailable")
            o = http("POST", "/resolve", headers=bearer(RESOLVE_TOKEN), json={"client_id": registered["client_id"]})
            c.check("resolve while the store is down", o, RESOLVE, status=503, error="temporarily_unavailable")
            o = http("GET", "/health/ready")
            c.check("readiness while the store is down", o, ("/health/ready", "get"), status=503)
            check_head(c, "readiness while the store is down", http, o, ("/health/ready", "get"))
            # no list was signed before the outage, so none can be served
            reference = status_reference(c, "registration (Redis)", registered, server)
            if reference is not None:
                o = http("GET", reference["uri"])
                c.check("a status list while the store is down", o, STATUS_LIST, status=503, error="temporarily_unavailable")
                check_head(c, "a status list while the store is down", http, o, STATUS_LIST)
            o = http("GET", "/status-lists")
            c.check("the aggregation while the store is down", o, AGGREGATION, status=503, error="temporarily_unavailable")
            o = http("GET", "/admin/withdrawals", headers=bearer(ADMIN_TOKEN))
            c.check("the withdrawals while the store is down", o, WITHDRAWALS, status=503, error="temporarily_unavailable")
            statement = material.sign_statement(statement_claims())
            c.check("registration while the store is down", http("POST", "/register", json={"software_statement": statement}), REGISTER, status=201)
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)


def statement_status_flow(c: Checker, material: Material) -> None:
    """A federation authority withdraws a software statement through its own status list
    (draft-ietf-oauth-status-list-18 §6.2, §8.3): the list served over https from a loopback
    port with a test CA, which only this server trusts (TEST ONLY fetch options). Skipped
    without an `openssl` command."""
    if not status_lists.available():
        print("openapi: no openssl on PATH; statements with a status claim are not checked")
        return
    authority = status_lists.Authority(material.authority_private, material.directory)
    with status_lists.ListServer(material.directory / "authority-lists") as lists:
        path = "/lists/1"
        uri = lists.url(path)
        size = 16
        lists.serve(path, authority.status_list(uri, size, {}))
        with Server(
            material,
            "statement-status",
            tables={
                "fetch": {
                    "extra_root_ca_file": str(lists.ca_file),
                    "allow_private_addresses": True,
                    "status_list_min_cache_secs": 1,
                }
            },
            issuer={"status_list_uris": [lists.url("/lists/")]},
        ) as server:
            http = Client(server)

            def register(label: str, status: Any, code: int, error: str | None = None) -> Any:
                statement = material.sign_statement(statement_claims(status=status))
                o = http("POST", "/register", json={"software_statement": statement})
                answer = c.check(label, o, REGISTER, status=code, error=error)
                if code == 503:
                    c.expect(o.headers.get("Retry-After") == "5", label, o, "Retry-After must be 5")
                return answer

            def entry(idx: int, at: str = uri) -> dict[str, Any]:
                return {"status_list": {"idx": idx, "uri": at}}

            withdrawn = register("registration with a statement status", entry(3), 201)
            kept = register("registration with another entry of the list", entry(4), 201)
            if not isinstance(withdrawn, dict) or not isinstance(kept, dict) or "registration_client_uri" not in withdrawn:
                return
            c.expect("status" not in withdrawn, "registration with a statement status", None, "the status claim is not metadata")
            o = http("POST", "/resolve", headers=bearer(RESOLVE_TOKEN), json={"client_id": withdrawn["client_id"]})
            answer = c.check("resolve a client whose statement has a status", o, RESOLVE, status=200)
            c.expect(
                isinstance(answer, dict) and (answer.get("software_statement") or {}).get("status") == {"idx": 3, "uri": uri},
                "resolve a client whose statement has a status",
                o,
                "software_statement.status must be the statement's entry",
            )
            register("registration with an index past the list", entry(size), 400, "invalid_software_statement")
            register("registration with a list outside status_list_uris", entry(0, "https://elsewhere.example/lists/1"), 400, "invalid_software_statement")
            register("registration with a status claim that is not an object", "valid", 400, "invalid_software_statement")
            register("registration with a status claim of another mechanism", {"other": {}}, 400, "invalid_software_statement")
            register("registration with a list that is not there", entry(0, lists.url("/lists/missing")), 503, "temporarily_unavailable")

            # the authority withdraws entry 3: no write at the registrar
            lists.serve(path, authority.status_list(uri, size, {3: 1}))
            read = (withdrawn["registration_client_uri"], withdrawn["registration_access_token"])
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                o = http("GET", read[0], headers=bearer(read[1]))
                if o.status != 200:
                    break
                time.sleep(0.5)
            c.check("read of a client whose statement was withdrawn", o, READ, status=401, error="invalid_token")
            o = http("POST", "/resolve", headers=bearer(RESOLVE_TOKEN), json={"client_id": withdrawn["client_id"]})
            answer = c.check("resolve a client whose statement was withdrawn", o, RESOLVE, status=200)
            c.expect(
                isinstance(answer, dict) and answer.get("error") == "invalid_client" and "withdrawn by its issuer" in answer.get("error_description", ""),
                "resolve a client whose statement was withdrawn",
                o,
                "expected invalid_client saying withdrawn by its issuer",
            )
            register("registration with a withdrawn statement", entry(3), 400, "unapproved_software_statement")
            o = http("GET", kept["registration_client_uri"], headers=bearer(kept["registration_access_token"]))
            c.check("read of a client of another entry", o, READ, status=200)

            # the list goes away: nothing can be said about the clients (fail closed)
            lists.stop()
            time.sleep(2)
            o = http("GET", kept["registration_client_uri"], headers=bearer(kept["registration_access_token"]))
            c.check("read while the statement's list cannot be fetched", o, READ, status=503, error="temporarily_unavailable")
            check_head(c, "read while the statement's list cannot be fetched", http, o, READ, bearer(kept["registration_access_token"]))
            o = http("POST", "/resolve", headers=bearer(RESOLVE_TOKEN), json={"client_id": kept["client_id"]})
            c.check("resolve while the statement's list cannot be fetched", o, RESOLVE, status=503, error="temporarily_unavailable")
            register("registration while the statement's list cannot be fetched", entry(5), 503, "temporarily_unavailable")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="print every check")
    parser.add_argument("--spec", type=Path, default=harness.SPEC_PATH, help="the OpenAPI document (default: docs/openapi.yaml)")
    args = parser.parse_args()

    spec = Spec(args.spec)
    spec.check_document()
    checker = Checker(spec, verbose=args.verbose)
    binary = harness.server_binary()
    print(f"openapi: checking {binary} against {spec.path}", flush=True)
    with tempfile.TemporaryDirectory(prefix="stateless-dcr-openapi-") as tmp:
        material = Material(binary, Path(tmp))
        with Server(
            material,
            "full",
            options={"request_timeout_secs": 2, "admin_api_tokens": [ADMIN_TOKEN]},
            tables={"status_lists": {"ttl_secs": LIST_TTL, "lifetime_secs": LIST_LIFETIME, "sign_interval_secs": 1}},
        ) as server:
            full_server_flow(checker, material, server)
        with Server(
            material,
            "open-none",
            options={"require_software_statement": False, "management": "none", "resolve_api_tokens": []},
            tables={"rate_limits": {"registration_per_address": {"burst": 1, "per_second": 0.001}}},
        ) as server:
            open_none_flow(checker, material, server)
        with Server(
            material,
            "read-only",
            options={"management": "read-only", "client_id_max_length": CLIENT_ID_MAX_LENGTH, "admin_api_tokens": [ADMIN_TOKEN]},
        ) as server:
            read_only_flow(checker, material, server)
        refusal = Server(material, "longer-client-ids", options={"client_id_max_length": CLIENT_ID_MAX_LENGTH + 1}).refused()
        checker.expect(
            refusal is not None and "client_id_max_length" in refusal,
            f"client_id_max_length = {CLIENT_ID_MAX_LENGTH + 1}",
            None,
            f"the server must refuse to start, naming the option; it said: {refusal!r}",
        )
        store_outage_flow(checker, material)
        statement_status_flow(checker, material)

    if checker.failures:
        print(
            f"\nopenapi: {len(checker.failures)} of {checker.checked} checks failed against "
            f"{spec.path} (details above):",
            file=sys.stderr,
        )
        for failure in checker.failures:
            print("  " + failure.splitlines()[0], file=sys.stderr)
        print(f"check_responses: {checker.checked - len(checker.failures)} passed, {len(checker.failures)} failed")
        return 1
    print(f"check_responses: {checker.checked} passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
