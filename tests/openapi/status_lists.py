"""Token Status Lists (draft-ietf-oauth-status-list-18) for check_responses.py, with the Python
standard library and the `openssl` command only:

- the registrar's lists: decoded (`decode_jwt`, `decode_list`) and their ES256 signature
  verified with a key of its `/jwks` (`verify_es256`);
- a federation authority's lists: signed with the authority's key (made by `stateless-dcr
  statement keygen`, ES256; `Authority`) and served over https from a loopback port with a
  certificate from a test CA made here (`ListServer`). The registrar under test trusts that CA
  (`fetch.extra_root_ca_file`) and may fetch from loopback (`fetch.allow_private_addresses`):
  both are TEST ONLY options.
"""

from __future__ import annotations

import base64
import http.server
import json
import shutil
import ssl
import subprocess
import threading
import time
import zlib
from pathlib import Path
from typing import Any

# the order of the P-256 group (SEC 2 §2.4.2)
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def available() -> bool:
    return shutil.which("openssl") is not None


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {result.stderr.strip()}")


def _der(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + content


def p256_private_pem(jwk: dict[str, Any]) -> str:
    """An EC P-256 private JWK (RFC 7518 §6.2) as a SEC 1 (RFC 5915) PEM key for openssl."""
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise ValueError("the authority key must be an EC P-256 key (ES256)")
    d = b64url_decode(jwk["d"]).rjust(32, b"\0")
    point = b"\x04" + b64url_decode(jwk["x"]).rjust(32, b"\0") + b64url_decode(jwk["y"]).rjust(32, b"\0")
    prime256v1 = bytes.fromhex("06082a8648ce3d030107")
    key = _der(
        0x30,
        _der(0x02, b"\x01")
        + _der(0x04, d)
        + _der(0xA0, prime256v1)
        + _der(0xA1, _der(0x03, b"\x00" + point)),
    )
    body = base64.encodebytes(key).decode().replace("\n", "")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN EC PRIVATE KEY-----\n" + "\n".join(lines) + "\n-----END EC PRIVATE KEY-----\n"


def p256_public_pem(jwk: dict[str, Any]) -> str:
    """An EC P-256 public JWK as a SubjectPublicKeyInfo (RFC 5480) PEM key for openssl."""
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise ValueError("not an EC P-256 key")
    point = b"\x04" + b64url_decode(jwk["x"]).rjust(32, b"\0") + b64url_decode(jwk["y"]).rjust(32, b"\0")
    algorithm = _der(0x30, bytes.fromhex("06072a8648ce3d0201") + bytes.fromhex("06082a8648ce3d030107"))
    key = _der(0x30, algorithm + _der(0x03, b"\x00" + point))
    body = base64.encodebytes(key).decode().replace("\n", "")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n"


def _der_integer(value: int) -> bytes:
    raw = value.to_bytes((value.bit_length() + 8) // 8 or 1, "big")  # a leading 0 keeps it positive
    return _der(0x02, raw)


def verify_es256(token: str, jwk: dict[str, Any], directory: Path) -> bool:
    """Whether the ES256 signature of the compact JWS `token` verifies with the public `jwk`
    (`openssl dgst -verify`)."""
    header, payload, signature = token.split(".")
    raw = b64url_decode(signature)
    if len(raw) != 64:
        return False
    r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    key = directory / "verify-key.pem"
    key.write_text(p256_public_pem(jwk))
    der = directory / "verify-signature.der"
    der.write_bytes(_der(0x30, _der_integer(r) + _der_integer(s)))
    result = subprocess.run(
        ["openssl", "dgst", "-sha256", "-verify", str(key), "-signature", str(der)],
        input=f"{header}.{payload}".encode(),
        capture_output=True,
        timeout=60,
    )
    return result.returncode == 0


def _der_integers(signature: bytes) -> tuple[int, int]:
    """r and s of a DER ECDSA-Sig-Value (RFC 3279 §2.2.3)."""
    def read(data: bytes, at: int) -> tuple[int, int, int]:
        tag, length = data[at], data[at + 1]
        at += 2
        if length & 0x80:
            count = length & 0x7F
            length = int.from_bytes(data[at : at + count], "big")
            at += count
        return tag, at, length

    tag, at, _ = read(signature, 0)
    assert tag == 0x30
    values = []
    for _ in range(2):
        tag, at, length = read(signature, at)
        assert tag == 0x02
        values.append(int.from_bytes(signature[at : at + length], "big"))
        at += length
    return values[0], values[1]


class Authority:
    """Signs Status List Tokens with the authority's ES256 key, through `openssl dgst`."""

    def __init__(self, private_jwk_path: Path, directory: Path):
        jwk = json.loads(private_jwk_path.read_text())
        self.kid = jwk["kid"]
        self.directory = directory
        self.key = directory / "authority.private.pem"
        self.key.write_text(p256_private_pem(jwk))
        self.key.chmod(0o600)

    def sign(self, header: dict[str, Any], claims: dict[str, Any]) -> str:
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        result = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", str(self.key)],
            input=signing_input.encode(),
            capture_output=True,
            timeout=60,
        )
        if result.returncode != 0:
            raise RuntimeError(f"openssl dgst failed: {result.stderr.decode(errors='replace')}")
        r, s = _der_integers(result.stdout)
        s = min(s, P256_ORDER - s)  # low S, the one spelling
        return f"{signing_input}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def status_list(self, uri: str, size: int, statuses: dict[int, int], bits: int = 1, ttl: int = 1) -> str:
        """A Status List Token (§5.1) for `uri` of `size` entries of `bits` bits, every entry
        VALID (0) but those in `statuses` (index -> value)."""
        now = int(time.time())
        return self.sign(
            {"alg": "ES256", "kid": self.kid, "typ": "statuslist+jwt"},
            {
                "sub": uri,
                "iat": now,
                "exp": now + 3600,
                "ttl": ttl,
                "status_list": {"bits": bits, "lst": encode_list(size, statuses, bits)},
            },
        )


def encode_list(size: int, statuses: dict[int, int], bits: int) -> str:
    """§4.1: entry i in bits i*bits.. of the byte array, least significant first; zlib; base64url."""
    data = bytearray((size * bits + 7) // 8)
    for index, value in statuses.items():
        position = index * bits
        data[position // 8] |= value << (position % 8)
    return b64url(zlib.compress(bytes(data), 9))


def decode_list(lst: str, bits: int) -> list[int]:
    """Every entry of a `status_list.lst` (§4.1)."""
    data = zlib.decompress(b64url_decode(lst))
    per_byte = 8 // bits
    mask = (1 << bits) - 1
    return [(byte >> (bits * i)) & mask for byte in data for i in range(per_byte)]


def decode_jwt(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of a compact JWS, unverified."""
    header, payload, _signature = token.split(".")
    return json.loads(b64url_decode(header)), json.loads(b64url_decode(payload))


class ListServer:
    """An https server on a loopback port, with a certificate for 127.0.0.1 from a test CA made
    here; it answers each configured path with its body, and 404 to anything else."""

    def __init__(self, directory: Path):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.ca_file = directory / "ca.pem"
        self._make_certificates()
        self.routes: dict[str, tuple[int, str, bytes]] = {}
        self.requests = 0
        routes = self.routes
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                owner.requests += 1
                status, media, body = routes.get(self.path, (404, "text/plain", b"not found"))
                self.send_response(status)
                self.send_header("Content-Type", media)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(directory / "leaf.pem"), str(directory / "leaf.key"))
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.running = False

    def _make_certificates(self) -> None:
        d = self.directory
        _openssl(
            "req", "-x509", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=stateless-dcr openapi test CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            cwd=d,
        )
        _openssl(
            "req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=127.0.0.1",
            cwd=d,
        )
        (d / "leaf.ext").write_text(
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        )
        _openssl(
            "x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "leaf.pem", "-days", "2", "-extfile", "leaf.ext",
            cwd=d,
        )

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def serve(self, path: str, token: str) -> None:
        self.routes[path] = (200, "application/statuslist+jwt", token.encode())

    def __enter__(self) -> "ListServer":
        self.thread.start()
        self.running = True
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop answering: connections are refused from then on."""
        if self.running:
            self.running = False
            self.httpd.shutdown()
            self.httpd.server_close()
