"""The MCP Python SDK against a running stateless-dcr server with open registration.

Every request is built, and every answer parsed, by the SDK's own helpers
(mcp.client.auth.utils) and pydantic models (mcp.shared.auth), sent with httpx2 as the SDK
sends them. The last check runs the SDK's OAuthClientProvider itself, up to the point where it
would open a browser.

    STATELESS_DCR_URL=http://127.0.0.1:8080 python test_mcp_python.py

Exit status: 0 when every check passed, 1 otherwise.
"""

import json
import logging
import os
import sys
import traceback
from urllib.parse import parse_qs, urlparse

import anyio
import httpx2
from mcp.client.auth import OAuthClientProvider
from mcp.client.auth.oauth2 import check_registration_usable
from mcp.client.auth.utils import (
    build_oauth_authorization_server_metadata_discovery_urls,
    create_client_registration_request,
    create_oauth_metadata_request,
    handle_auth_metadata_response,
    handle_registration_response,
    validate_metadata_issuer,
)
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthMetadata, OAuthToken

BASE = os.environ.get("STATELESS_DCR_URL", "http://127.0.0.1:8080").rstrip("/")
PORT = 33418  # a loopback callback port, as a desktop MCP client would open


def client_metadata(redirect_uri: str) -> OAuthClientMetadata:
    # What an MCP client built on this SDK registers. application_type is left to the SDK's
    # default ("native", SEP-837), so the request carries what the SDK really sends.
    return OAuthClientMetadata(
        client_name="MCP Python interop test client",
        redirect_uris=[redirect_uri],
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",
    )


def describe(response: httpx2.Response) -> str:
    return f"{response.status_code} {response.text}"


async def discover(client: httpx2.AsyncClient, auth_server_url: str | None) -> list[str]:
    """The SDK's discovery loop: candidate URLs, one SDK-built GET each, the first parse wins."""
    urls = build_oauth_authorization_server_metadata_discovery_urls(auth_server_url, BASE)
    notes = []
    for url in urls:
        request = create_oauth_metadata_request(url)
        notes.append(f"GET {url} headers={dict(request.headers)}")
        response = await client.send(request)
        ok, metadata = await handle_auth_metadata_response(response)
        if metadata is None:
            # handle_auth_metadata_response swallows the pydantic error: show it.
            if response.status_code == 200:
                OAuthMetadata.model_validate_json(response.content)
            raise AssertionError(f"{url}: {describe(response)}")
        assert str(metadata.registration_endpoint) == f"{BASE}/register", metadata.registration_endpoint
        # RFC 8414 §3.3 / SEP-2468, as the provider checks it (issuer compared as a string).
        validate_metadata_issuer(metadata, auth_server_url or BASE)
        break
    return notes


async def check_discovery_documents(client: httpx2.AsyncClient) -> str:
    # Both well-known documents, validated by the SDK's RFC 8414 model.
    notes = []
    for path in ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"):
        response = await client.send(create_oauth_metadata_request(f"{BASE}{path}"))
        assert response.status_code == 200, describe(response)
        metadata = OAuthMetadata.model_validate(response.json())
        assert str(metadata.issuer) == BASE, f"issuer {metadata.issuer} != {BASE}"
        assert str(metadata.registration_endpoint) == f"{BASE}/register"
        assert "code" in metadata.response_types_supported
        assert "S256" in (metadata.code_challenge_methods_supported or [])
        assert "none" in (metadata.token_endpoint_auth_methods_supported or [])
        notes.append(f"{path}: registration_endpoint={metadata.registration_endpoint}")
    return "; ".join(notes)


async def check_discovery_legacy(client: httpx2.AsyncClient) -> str:
    # No protected resource metadata: the 2025-03-26 path, RFC 8414 at the origin only.
    return "; ".join(await discover(client, None))


async def check_discovery_advertised(client: httpx2.AsyncClient) -> str:
    # The registrar advertised in protected resource metadata as the authorization server.
    return "; ".join(await discover(client, BASE))


async def register(client: httpx2.AsyncClient, redirect_uri: str) -> tuple[OAuthClientInformationFull, str]:
    response = await client.send(
        create_oauth_metadata_request(f"{BASE}/.well-known/oauth-authorization-server")
    )
    metadata = OAuthMetadata.model_validate_json(response.content)
    request = create_client_registration_request(metadata, client_metadata(redirect_uri), BASE)
    sent = f"POST {request.url} headers={dict(request.headers)} body={request.content.decode()}"
    response = await client.send(request)
    info = await handle_registration_response(response)  # raises OAuthRegistrationError on 4xx
    check_registration_usable(info)
    return info, sent


def registration_check(host: str):
    async def check(client: httpx2.AsyncClient) -> str:
        redirect_uri = f"http://{host}:{PORT}/callback"
        info, sent = await register(client, redirect_uri)
        assert isinstance(info.client_id, str) and info.client_id
        assert [str(u) for u in info.redirect_uris or []] == [redirect_uri], info.redirect_uris
        assert info.token_endpoint_auth_method == "none", info.token_endpoint_auth_method
        assert info.client_secret is None, "a public client gets no secret"
        assert info.grant_types == ["authorization_code", "refresh_token"], info.grant_types
        return f"{sent} -> client_id {info.client_id[:24]}..., application_type={info.application_type}"

    return check


class MemoryStorage:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


class StopAtBrowser(Exception):
    """Raised by the callback handler: the flow got as far as sending the user to the OP."""


def provider_check(mcp_url: str, advertise: bool):
    """The SDK's own flow: an MCP request answered 401 makes the provider discover the registrar,
    register, and send the user to the authorization endpoint. The MCP server at `mcp_url` is
    faked: its path answers 401, and with `advertise` its RFC 9728 protected resource metadata
    names the registrar; every other request goes over the network."""

    async def check(_client: httpx2.AsyncClient) -> str:
        mcp = urlparse(mcp_url)
        prm_path = f"/.well-known/oauth-protected-resource{mcp.path}"
        real = httpx2.AsyncHTTPTransport()
        seen: list[str] = []

        class Transport(httpx2.AsyncBaseTransport):
            async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
                if request.url.host == mcp.hostname and request.url.port == mcp.port:
                    if request.url.path == mcp.path:
                        response = httpx2.Response(401, request=request)
                    elif advertise and request.url.path == prm_path:
                        prm = {"resource": mcp_url, "authorization_servers": [BASE]}
                        response = httpx2.Response(200, json=prm, request=request)
                    else:
                        response = None
                    if response is not None:
                        seen.append(f"{request.method} {request.url} -> {response.status_code} (fake MCP server)")
                        return response
                response = await real.handle_async_request(request)
                seen.append(f"{request.method} {request.url} -> {response.status_code}")
                return response

        storage = MemoryStorage()
        redirected: list[str] = []

        async def redirect_handler(url: str) -> None:
            redirected.append(url)

        async def callback_handler():
            raise StopAtBrowser()

        redirect_uri = f"http://localhost:{PORT}/callback"
        provider = OAuthClientProvider(mcp_url, client_metadata(redirect_uri), storage, redirect_handler, callback_handler)
        async with httpx2.AsyncClient(auth=provider, transport=Transport()) as client:
            try:
                await client.post(mcp_url, json={"jsonrpc": "2.0", "id": 1, "method": "initialize"})
            except StopAtBrowser:
                pass
            except Exception as error:
                raise AssertionError(f"{type(error).__name__}: {error}\nrequests: {json.dumps(seen, indent=1)}") from error
        assert storage.client_info is not None, f"no registration; requests: {seen}"
        assert redirected, f"never redirected; requests: {seen}"
        query = parse_qs(urlparse(redirected[0]).query)
        assert query["client_id"] == [storage.client_info.client_id]
        assert query["redirect_uri"] == [redirect_uri]
        assert query["code_challenge_method"] == ["S256"]
        return f"requests: {seen}; authorization URL {redirected[0][:60]}..."

    return check


CHECKS = [
    ("discovery documents parse as OAuthMetadata", check_discovery_documents),
    ("SDK discovery, legacy path (no protected resource metadata)", check_discovery_legacy),
    ("SDK discovery, registrar advertised as authorization server", check_discovery_advertised),
    ("registration, redirect http://127.0.0.1:<port>/callback", registration_check("127.0.0.1")),
    ("registration, redirect http://localhost:<port>/callback", registration_check("localhost")),
    # The legacy path needs the MCP server on the registrar's origin; with RFC 9728 it is elsewhere.
    ("OAuthClientProvider, no protected resource metadata", provider_check(f"{BASE}/mcp", advertise=False)),
    ("OAuthClientProvider, registrar named in protected resource metadata",
     provider_check("http://mcp.example.test:8000/mcp", advertise=True)),
]


async def main() -> int:
    # The provider logs the exception that ends each flow on purpose (StopAtBrowser): drop those.
    logging.getLogger("mcp.client.auth.oauth2").addFilter(
        lambda record: not (record.exc_info and isinstance(record.exc_info[1], StopAtBrowser))
    )
    failures = 0
    async with httpx2.AsyncClient() as client:
        for name, check in CHECKS:
            try:
                detail = await check(client)
                print(f"PASS {name}\n     {detail}")
            except Exception:
                failures += 1
                print(f"FAIL {name}\n{traceback.format_exc()}")
    print(f"\n{len(CHECKS) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(anyio.run(main))
