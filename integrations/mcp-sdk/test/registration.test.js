// (b, c) Dynamic client registration through the SDK, with the metadata MCP clients send:
// a public client (token_endpoint_auth_method "none") on a loopback redirect, or Cursor's
// private-use scheme. No application_type: MCP clients do not send it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { auth, discoverAuthorizationServerMetadata, registerClient } from '@modelcontextprotocol/sdk/client/auth.js';

import { recordingFetch, startRegistrar } from './helpers/registrar.js';

const CURSOR_REDIRECT = 'cursor://anysphere.cursor-mcp/oauth/callback';

function mcpClientMetadata(redirectUri) {
  return {
    client_name: 'MCP interop test client',
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
  };
}

/** Register through the SDK; returns what it parsed and what went over the wire. */
async function sdkRegister(registrar, clientMetadata) {
  const metadata = await discoverAuthorizationServerMetadata(registrar.url);
  const { fetchFn, calls } = recordingFetch();
  try {
    const info = await registerClient(registrar.url, { metadata, clientMetadata, fetchFn });
    return { info, calls };
  } catch (error) {
    return { error, calls };
  }
}

function wire(calls) {
  return JSON.stringify(calls.map(({ method, url, status, responseBody }) => ({ method, url, status, responseBody })), null, 2);
}

describe('open registration, default configuration', () => {
  let registrar;
  before(async () => { registrar = await startRegistrar(); });
  after(async () => { await registrar?.stop(); });

  for (const host of ['127.0.0.1', 'localhost']) {
    test(`registerClient: public client with redirect http://${host}:<port>/callback`, async () => {
      const redirectUri = `http://${host}:33418/callback`;
      const { info, error, calls } = await sdkRegister(registrar, mcpClientMetadata(redirectUri));
      assert.ifError(error && new Error(`${error.constructor.name}: ${error.message}\n${wire(calls)}`));
      assert.equal(calls.length, 1);
      assert.equal(calls[0].method, 'POST');
      assert.equal(calls[0].url, `${registrar.url}/register`);
      assert.deepEqual(calls[0].headers, { 'content-type': 'application/json' });
      assert.equal(calls[0].status, 201);
      // What the SDK parsed (RegistrationResponseSchema = OAuthClientInformationFullSchema).
      assert.equal(typeof info.client_id, 'string');
      assert.ok(info.client_id.length > 0);
      assert.deepEqual(info.redirect_uris, [redirectUri]);
      assert.deepEqual(info.grant_types, ['authorization_code', 'refresh_token']);
      assert.deepEqual(info.response_types, ['code']);
      assert.equal(info.token_endpoint_auth_method, 'none');
      assert.equal(info.client_name, 'MCP interop test client');
      assert.equal(info.client_secret, undefined, 'a public client gets no secret');
      assert.equal(typeof info.client_id_issued_at, 'number');
    });
  }

  test('auth(): the SDK orchestrator discovers, registers and builds the authorization URL', async () => {
    const redirectUrl = 'http://localhost:33418/callback';
    const saved = {};
    const provider = {
      get redirectUrl() { return redirectUrl; },
      get clientMetadata() { return mcpClientMetadata(redirectUrl); },
      clientInformation: () => saved.client,
      saveClientInformation: (client) => { saved.client = client; },
      tokens: () => undefined,
      saveTokens: () => {},
      saveCodeVerifier: (verifier) => { saved.verifier = verifier; },
      codeVerifier: () => saved.verifier,
      redirectToAuthorization: (url) => { saved.authorizationUrl = url; },
    };
    const { fetchFn, calls } = recordingFetch();
    const result = await auth(provider, { serverUrl: registrar.url, fetchFn });
    assert.equal(result, 'REDIRECT', wire(calls));
    assert.equal(typeof saved.client.client_id, 'string');
    const url = saved.authorizationUrl;
    assert.equal(`${url.origin}${url.pathname}`, `${registrar.opUrl}/authorize`);
    assert.equal(url.searchParams.get('client_id'), saved.client.client_id);
    assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
    assert.equal(url.searchParams.get('redirect_uri'), redirectUrl);
  });

  test(`Cursor's private-use redirect ${CURSOR_REDIRECT} is refused: 400 invalid_redirect_uri`, async () => {
    const { info, error, calls } = await sdkRegister(registrar, mcpClientMetadata(CURSOR_REDIRECT));
    assert.equal(info, undefined, 'registered, though the scheme is not allowed');
    assert.equal(calls[0].status, 400, wire(calls));
    const body = JSON.parse(calls[0].responseBody);
    assert.equal(body.error, 'invalid_redirect_uri');
    // The SDK has no error class for invalid_redirect_uri: it surfaces as its ServerError,
    // with the server's error_description as the message.
    assert.equal(error.message, body.error_description);
  });
});

describe('open registration, allowed_private_use_schemes = ["cursor"]', () => {
  test(`Cursor's redirect ${CURSOR_REDIRECT} is accepted`, async () => {
    const registrar = await startRegistrar({ extraToml: 'allowed_private_use_schemes = ["cursor"]' });
    try {
      const { info, error, calls } = await sdkRegister(registrar, mcpClientMetadata(CURSOR_REDIRECT));
      assert.ifError(error && new Error(`${error.constructor.name}: ${error.message}\n${wire(calls)}`));
      assert.equal(calls[0].status, 201);
      assert.equal(typeof info.client_id, 'string');
      assert.deepEqual(info.redirect_uris, [CURSOR_REDIRECT]);
    } finally {
      await registrar.stop();
    }
  });
});
