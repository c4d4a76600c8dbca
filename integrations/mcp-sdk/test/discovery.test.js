// (a) The MCP TypeScript SDK discovers the registrar as an OAuth authorization server, through
// each discovery entry point it has, and finds our registration_endpoint.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  discoverAuthorizationServerMetadata, discoverOAuthMetadata, discoverOAuthServerInfo,
} from '@modelcontextprotocol/sdk/client/auth.js';
import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';

import { recordingFetch, startRegistrar } from './helpers/registrar.js';

let registrar;
before(async () => { registrar = await startRegistrar(); });
after(async () => { await registrar?.stop(); });

test('RFC 8414: discoverAuthorizationServerMetadata reads /.well-known/oauth-authorization-server', async () => {
  const { fetchFn, calls } = recordingFetch();
  const metadata = await discoverAuthorizationServerMetadata(registrar.url, { fetchFn });
  assert.ok(metadata, `no metadata; requests: ${JSON.stringify(calls, null, 2)}`);
  assert.equal(metadata.issuer, registrar.url);
  assert.equal(metadata.registration_endpoint, `${registrar.url}/register`);
  assert.equal(metadata.authorization_endpoint, `${registrar.opUrl}/authorize`);
  assert.equal(metadata.token_endpoint, `${registrar.opUrl}/token`);
  // The first URL the SDK tries is the RFC 8414 one, and it is the one that answered.
  assert.equal(calls[0].url, `${registrar.url}/.well-known/oauth-authorization-server`);
  assert.equal(calls.length, 1);
  // What the SDK sends on discovery (a browser preflights for mcp-protocol-version).
  assert.deepEqual(calls[0].headers, { 'mcp-protocol-version': LATEST_PROTOCOL_VERSION, accept: 'application/json' });
});

test('OIDC: the SDK falls back to /.well-known/openid-configuration and parses it as OpenID metadata', async () => {
  // Hide the RFC 8414 document, as a plain OpenID Provider would not have it: the SDK then
  // takes its OIDC branch (OpenIdProviderDiscoveryMetadataSchema, stricter: jwks_uri,
  // subject_types_supported, id_token_signing_alg_values_supported are required).
  const { fetchFn, calls } = recordingFetch((url) => (
    url.endsWith('/.well-known/oauth-authorization-server') ? new Response('{}', { status: 404 }) : undefined
  ));
  const metadata = await discoverAuthorizationServerMetadata(registrar.url, { fetchFn });
  assert.ok(metadata, `no metadata; requests: ${JSON.stringify(calls, null, 2)}`);
  assert.deepEqual(calls.map((c) => new URL(c.url).pathname),
    ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']);
  assert.equal(metadata.registration_endpoint, `${registrar.url}/register`);
  assert.equal(metadata.jwks_uri, `${registrar.url}/jwks`);
  assert.ok(metadata.code_challenge_methods_supported.includes('S256'));
});

test('discoverOAuthMetadata (deprecated, still used by older clients) reads the RFC 8414 document', async () => {
  const { fetchFn, calls } = recordingFetch();
  const metadata = await discoverOAuthMetadata(registrar.url, {}, fetchFn);
  assert.ok(metadata, `no metadata; requests: ${JSON.stringify(calls, null, 2)}`);
  assert.equal(metadata.registration_endpoint, `${registrar.url}/register`);
  assert.deepEqual(calls[0].headers, { 'mcp-protocol-version': LATEST_PROTOCOL_VERSION });
});

test('discoverOAuthServerInfo: the full MCP client path, with the registrar as the server URL', async () => {
  // An MCP client first asks for RFC 9728 protected resource metadata (we have none: 404),
  // then treats the origin as the authorization server.
  const { fetchFn, calls } = recordingFetch();
  const info = await discoverOAuthServerInfo(registrar.url, { fetchFn });
  assert.equal(info.authorizationServerUrl, `${registrar.url}/`);
  assert.equal(info.resourceMetadata, undefined);
  assert.equal(info.authorizationServerMetadata?.registration_endpoint, `${registrar.url}/register`,
    `requests: ${JSON.stringify(calls.map(({ method, url, status }) => ({ method, url, status })))}`);
});
