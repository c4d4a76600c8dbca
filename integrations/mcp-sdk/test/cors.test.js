// (d) What a browser MCP client (the MCP Inspector, on http://localhost:6274) needs: the SDK's
// discovery request carries MCP-Protocol-Version, which is not a CORS-safelisted header, so
// the browser sends a preflight first; and every answer must carry Access-Control-Allow-Origin
// or the browser hides it from the SDK. The requests are made by hand with fetch (Node does not
// enforce CORS), with the header names the SDK really sends, read from a recorded discovery.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { auth, discoverAuthorizationServerMetadata } from '@modelcontextprotocol/sdk/client/auth.js';

import { recordingFetch, startRegistrar } from './helpers/registrar.js';

const ORIGIN = 'http://localhost:6274';
// Fetch spec, "CORS-safelisted request-header": these never cause a preflight.
const SAFELISTED = new Set(['accept', 'accept-language', 'content-language']);

let registrar;
let preflightHeaders; // what the browser would list in Access-Control-Request-Headers
before(async () => {
  registrar = await startRegistrar();
  const { fetchFn, calls } = recordingFetch();
  await discoverAuthorizationServerMetadata(registrar.url, { fetchFn });
  preflightHeaders = Object.keys(calls[0].headers).filter((h) => !SAFELISTED.has(h)).sort();
});
after(async () => { await registrar?.stop(); });

test('the SDK discovery request needs a preflight for mcp-protocol-version', () => {
  assert.deepEqual(preflightHeaders, ['mcp-protocol-version']);
});

function show(response, body) {
  return `${response.status} ${JSON.stringify(Object.fromEntries(response.headers))} ${body}`;
}

for (const path of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration', '/jwks']) {
  test(`preflight OPTIONS ${path} from ${ORIGIN}`, async () => {
    const response = await fetch(`${registrar.url}${path}`, {
      method: 'OPTIONS',
      headers: {
        origin: ORIGIN,
        'access-control-request-method': 'GET',
        'access-control-request-headers': preflightHeaders.join(','),
      },
    });
    const body = await response.text();
    assert.equal(response.status, 200, show(response, body));
    const allowOrigin = response.headers.get('access-control-allow-origin');
    assert.ok(allowOrigin === ORIGIN || allowOrigin === '*', show(response, body));
    const allowHeaders = (response.headers.get('access-control-allow-headers') ?? '').toLowerCase();
    for (const h of preflightHeaders) {
      assert.ok(allowHeaders === '*' || allowHeaders.split(/\s*,\s*/).includes(h), `${h} not allowed: ${show(response, body)}`);
    }
  });

  test(`GET ${path} with Origin gets Access-Control-Allow-Origin`, async () => {
    const response = await fetch(`${registrar.url}${path}`, {
      headers: { origin: ORIGIN, 'mcp-protocol-version': '2025-11-25', accept: 'application/json' },
    });
    await response.arrayBuffer();
    assert.equal(response.status, 200);
    const allowOrigin = response.headers.get('access-control-allow-origin');
    assert.ok(allowOrigin === ORIGIN || allowOrigin === '*', show(response, ''));
  });
}

test(`preflight OPTIONS /register for the SDK's POST (content-type) from ${ORIGIN}`, async () => {
  // registerClient sends only Content-Type: application/json, which does need a preflight.
  const response = await fetch(`${registrar.url}/register`, {
    method: 'OPTIONS',
    headers: { origin: ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
  });
  const body = await response.text();
  assert.equal(response.status, 200, show(response, body));
  assert.equal(response.headers.get('access-control-allow-origin'), ORIGIN);
});

/**
 * A fetch that behaves like a browser page on ORIGIN: a request with a header that is not
 * safelisted (content-type counts as one here) is preflighted first, and a preflight or an
 * answer without Access-Control-Allow-Origin is a network error (TypeError), as fetch()
 * reports it to page scripts.
 */
function browserFetch(log) {
  const allowed = (response) => [ORIGIN, '*'].includes(response.headers.get('access-control-allow-origin'));
  return async (input, init = {}) => {
    const url = String(input);
    const method = init.method ?? 'GET';
    const headers = new Headers(init.headers);
    const unsafe = [...headers.keys()].filter((h) => !SAFELISTED.has(h));
    if (unsafe.length > 0 || !['GET', 'HEAD', 'POST'].includes(method)) {
      const preflight = await fetch(url, {
        method: 'OPTIONS',
        headers: { origin: ORIGIN, 'access-control-request-method': method, 'access-control-request-headers': unsafe.join(',') },
      });
      await preflight.arrayBuffer();
      log.push(`OPTIONS ${url} -> ${preflight.status}`);
      if (!preflight.ok || !allowed(preflight)) throw new TypeError(`CORS preflight failed: ${url}`);
    }
    headers.set('origin', ORIGIN);
    const response = await fetch(url, { ...init, headers });
    log.push(`${method} ${url} -> ${response.status}${allowed(response) ? '' : ' (no Access-Control-Allow-Origin)'}`);
    if (!allowed(response)) throw new TypeError(`CORS: no Access-Control-Allow-Origin on ${url}`);
    return response;
  };
}

test('auth() in a browser page (CORS emulated) discovers the registrar and goes to its authorization_endpoint', async () => {
  // If discovery is blocked, the SDK carries on without metadata: it still registers at
  // <server>/register, then sends the user to <server>/authorize, which is not the OP.
  const log = [];
  const redirectUrl = 'http://localhost:6274/oauth/callback';
  const saved = {};
  const provider = {
    get redirectUrl() { return redirectUrl; },
    get clientMetadata() {
      return {
        client_name: 'MCP Inspector (emulated)', redirect_uris: [redirectUrl],
        grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none',
      };
    },
    clientInformation: () => saved.client,
    saveClientInformation: (client) => { saved.client = client; },
    tokens: () => undefined,
    saveTokens: () => {},
    saveCodeVerifier: () => {},
    codeVerifier: () => '',
    saveDiscoveryState: (state) => { saved.discovery = state; },
    redirectToAuthorization: (url) => { saved.authorizationUrl = url; },
  };
  const result = await auth(provider, { serverUrl: registrar.url, fetchFn: browserFetch(log) });
  assert.equal(result, 'REDIRECT');
  const trace = `authorization URL: ${saved.authorizationUrl}; requests:\n${log.join('\n')}`;
  assert.ok(saved.discovery?.authorizationServerMetadata, `discovery failed in the browser; ${trace}`);
  const url = saved.authorizationUrl;
  assert.equal(`${url.origin}${url.pathname}`, `${registrar.opUrl}/authorize`, trace);
});
