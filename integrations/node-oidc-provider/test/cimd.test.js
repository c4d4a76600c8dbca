// End to end, OAuth Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document):
// a client_id that is the https URL of the client's metadata. A local https server holds the
// documents, a real stateless-dcr registrar (`[client_id_metadata_documents] mode = "on"`)
// fetches and checks them for POST /resolve, the example OP runs online with
// OP_METADATA_DOCUMENTS=true, and openid-client is the relying party. Every request goes over
// HTTP(S) between processes.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import * as oidc from 'openid-client';

import {
  OfflineResolver, OnlineResolver, looksLikeDocumentUrl, statelessDcrAdapter,
} from '../lib/index.js';
import { startDocumentServer } from './helpers/document-server.js';
import { startOp } from './helpers/op.js';
import { freePort } from './helpers/processes.js';
import { registrarBinary, startRegistrar } from './helpers/registrar.js';
import {
  REDIRECT_URI, assertIdToken, authorizeOnly, codeFlow,
} from './helpers/relying-party.js';

const PACKAGE_DIR = fileURLToPath(new URL('..', import.meta.url));
// The OP keeps POST /resolve answers this long; the registrar keeps a document at least 60 s
// (`min_cache_secs`), so a resolve after this TTL still fetches nothing.
const CACHE_TTL_SECS = 1;
const TIMEOUT = { timeout: 60_000 };

/** A document for the code flow, at `url`: a public client (no secret can exist for it). */
const documentFor = (url, extra = {}) => ({
  client_id: url,
  client_name: 'CIMD relying party',
  redirect_uris: [REDIRECT_URI],
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: 'none',
  scope: 'openid email',
  ...extra,
});

let documents;
let registrar;
let metricsUrl; // the registrar's Prometheus endpoint
let op;

describe('client ID metadata documents at node-oidc-provider, through the registrar', () => {
  before(async () => {
    documents = await startDocumentServer();
    const metricsPort = await freePort();
    metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
    registrar = await startRegistrar(registrarBinary(PACKAGE_DIR), {
      extraConfig: `
[metrics]
listen = "127.0.0.1:${metricsPort}"

[client_id_metadata_documents]
mode = "on"

# TEST ONLY: trust the document server's self-signed certificate, and let the registrar
# fetch from 127.0.0.1
[fetch]
extra_root_ca_file = ${JSON.stringify(documents.certFile)}
allow_private_addresses = true
`,
    });
    op = await startOp(registrar, 'online', {
      OP_METADATA_DOCUMENTS: 'true',
      OP_CACHE_TTL_SECS: String(CACHE_TTL_SECS),
    });
  }, TIMEOUT);

  after(async () => {
    await Promise.all([op, registrar, documents].filter(Boolean).map((p) => p.stop()));
  });

  test('discovery: the registrar and the OP say client_id_metadata_document_supported', TIMEOUT, async () => {
    const atRegistrar = await (await fetch(`${registrar.url}/.well-known/openid-configuration`)).json();
    assert.equal(atRegistrar.client_id_metadata_document_supported, true);
    const atOp = await (await fetch(`${op.issuer}/.well-known/openid-configuration`)).json();
    assert.equal(atOp.client_id_metadata_document_supported, true);
    assert.equal(atOp.registration_endpoint, `${registrar.url}/register`);
  });

  test('code flow with PKCE, the client_id the URL of its document (token_endpoint_auth_method none)', TIMEOUT, async () => {
    const path = '/clients/rp.json';
    const clientId = documents.url(path);
    documents.serve(path, documentFor(clientId));

    const result = await codeFlow(op, { client_id: clientId }, oidc.None());
    assert.equal(result.config.serverMetadata().client_id_metadata_document_supported, true);
    assert.equal(result.claims.aud, clientId, 'the ID Token is for the URL');
    await assertIdToken(op, { client_id: clientId }, result); // verifies with the OP's jwks
    assert.ok(result.tokens.access_token);
    const userinfo = await oidc.fetchUserInfo(result.config, result.tokens.access_token, 'alice');
    assert.equal(userinfo.email, 'alice@example.test');
    // the authorization request, the token request: one fetch of the document
    assert.equal(documents.requests(path), 1);
    // and the client cannot authenticate with a secret it does not have
    const token = await tokenRequest(clientId, { secret: 'a secret' });
    assert.equal(token.status, 401);
    assert.equal(token.body.error, 'invalid_client');
  });

  test('the OnlineResolver answers a document client without a secret; off by default and offline', TIMEOUT, async () => {
    const path = '/clients/resolver.json';
    const clientId = documents.url(path);
    const document = documentFor(clientId, { client_name: 'CIMD resolver' });
    documents.serve(path, document);
    const options = { resolveUrl: `${registrar.url}/resolve`, apiToken: registrar.apiToken };

    // off (the default): no request, an unknown client
    assert.equal(await new OnlineResolver(options).resolve(clientId), null);
    assert.equal(documents.requests(path), 0, 'not even asked of the registrar');

    const found = await new OnlineResolver({ ...options, metadataDocuments: true }).resolve(clientId);
    const { client_id_issued_at: issuedAt, ...metadata } = found.metadata;
    assert.deepEqual(metadata, {
      ...document,
      // the defaults the registrar's full form adds
      application_type: 'web',
      subject_type: 'public',
      id_token_signed_response_alg: 'RS256',
      require_auth_time: false,
    });
    assert.ok(Number.isSafeInteger(issuedAt));
    assert.equal(found.metadata.client_secret, undefined);
    assert.equal(found.expiresAt, undefined);
    assert.equal(documents.requests(path), 1);

    // what the resolver looks at, and what it leaves alone
    assert.equal(looksLikeDocumentUrl(clientId), true);
    for (const id of ['http://rp.example/client.json', `https://rp.example/${'a'.repeat(2048)}`, 'a.b.c', 42]) {
      assert.equal(looksLikeDocumentUrl(id), false, String(id).slice(0, 40));
    }

    // offline, the registrar's keys cannot vouch for a document: refused at construction
    const offline = { issuer: registrar.issuer, jwksUri: `${registrar.url}/jwks` };
    assert.throws(() => new OfflineResolver({ ...offline, metadataDocuments: true }), TypeError);
    assert.throws(() => statelessDcrAdapter({
      mode: 'offline', fallback: class {}, ...offline, ...options, metadataDocuments: true,
    }), /mode "online"/);
    assert.throws(() => new OnlineResolver({ ...options, metadataDocuments: 'true' }), TypeError);
  });

  test('the OnlineResolver refuses answers that do not fit a document client (a stand-in registrar)', TIMEOUT, async () => {
    const clientId = 'https://rp.cimd.example/client.json';
    const good = {
      valid: true,
      source: 'metadata_document',
      authenticated: true,
      client_type: 'public',
      expires_at: null,
      client: { ...documentFor(clientId), client_id_issued_at: 1_700_000_000 },
    };
    let answer;
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
    });
    await new Promise((resolve) => { server.listen(0, '127.0.0.1', resolve); });
    try {
      const warnings = [];
      const resolver = () => new OnlineResolver({
        resolveUrl: `http://127.0.0.1:${server.address().port}/resolve`,
        apiToken: 'x'.repeat(32),
        metadataDocuments: true,
        log: (_level, message) => warnings.push(message),
      });
      answer = good;
      assert.equal((await resolver().resolve(clientId))?.metadata.client_id, clientId, 'the control');
      const bad = {
        'another client_id': { ...good, client: { ...good.client, client_id: 'https://rp.cimd.example/other.json' } },
        'source client_id for a URL': { ...good, source: 'client_id' },
        'no source for a URL': { ...good, source: undefined },
        'a shared-secret method': { ...good, client: { ...good.client, token_endpoint_auth_method: 'client_secret_basic' } },
        'valid false': { valid: false, error: 'invalid_client', error_description: 'no' },
      };
      for (const [what, body] of Object.entries(bad)) {
        answer = body;
        assert.equal(await resolver().resolve(clientId), null, what);
      }
      assert.match(warnings.join('\n'), /source "client_id" for a client_id URL/);
      assert.match(warnings.join('\n'), /client https:\/\/rp\.cimd\.example\/client\.json authenticates with a secret/);
      // and a JWS-shaped client_id answered as a document is refused too
      answer = { ...good, client: { ...good.client, client_id: 'a.b.c' } };
      assert.equal(await resolver().resolve('a.b.c'), null);
    } finally {
      server.close();
    }
  });

  test('the example OP refuses OP_METADATA_DOCUMENTS=true offline', TIMEOUT, async () => {
    await assert.rejects(
      startOp(registrar, 'offline', { OP_METADATA_DOCUMENTS: 'true' }),
      /exited:[\s\S]*metadataDocuments/,
    );
  });

  test('refused documents: the OP shows its invalid_client page, and the token endpoint says 401', TIMEOUT, async () => {
    // each with the registrar's reason, as POST /resolve gives it
    const cases = {
      'its client_id is another URL': [
        (url) => ({ ...documentFor(url), client_id: documents.url('/clients/rp.json') }),
        /its client_id is not the URL it was fetched from/,
      ],
      'token_endpoint_auth_method client_secret_basic': [
        (url) => documentFor(url, { token_endpoint_auth_method: 'client_secret_basic' }),
        /client_secret_basic needs a shared secret/,
      ],
      'no token_endpoint_auth_method (the default is client_secret_basic)': [
        (url) => documentFor(url, { token_endpoint_auth_method: undefined }),
        /token_endpoint_auth_method is required/,
      ],
      'a 404': [null, /cannot be fetched: the server answered HTTP 404/],
    };
    let i = 0;
    for (const [what, [make, reason]] of Object.entries(cases)) {
      const path = `/clients/refused-${i += 1}.json`;
      const clientId = documents.url(path);
      if (make) documents.serve(path, make(clientId));
      const page = await authorizeOnly(op, clientId, REDIRECT_URI);
      assert.equal(page.redirect, undefined, `${what}: no login interaction`);
      assert.equal(page.response?.status, 400, `${what}: authorization endpoint`);
      assert.match(page.response.text, /<strong>error<\/strong>: invalid_client/, what);
      const token = await tokenRequest(clientId);
      assert.equal(token.status, 401, `${what}: token endpoint`);
      assert.equal(token.body.error, 'invalid_client', what);
      const answer = await resolveAtRegistrar(clientId);
      assert.equal(answer.valid, false, what);
      assert.equal(answer.error, 'invalid_client', what);
      assert.match(answer.error_description, reason, what);
      // the refusal is remembered (failure_cache_secs, 5 s): one fetch for all of these
      assert.equal(documents.requests(path), 1, `${what}: fetched once`);
    }
    // the control: a good document, then the same code-less token request is a grant error
    const path = '/clients/control.json';
    documents.serve(path, documentFor(documents.url(path)));
    assert.ok((await authorizeOnly(op, documents.url(path), REDIRECT_URI)).redirect, 'control');
    const token = await tokenRequest(documents.url(path));
    assert.equal(token.status, 400);
    assert.equal(token.body.error, 'invalid_grant');
    assert.ok(op.proc.alive());
    assert.doesNotMatch(op.proc.output(), /server_error|Unhandled|TypeError/);
  });

  test('the document is fetched once for several resolves, past the OP\'s cache TTL', TIMEOUT, async () => {
    const path = '/clients/cached.json';
    const clientId = documents.url(path);
    documents.serve(path, documentFor(clientId), { headers: { 'cache-control': 'max-age=0' } });

    assert.ok((await authorizeOnly(op, clientId, REDIRECT_URI)).redirect, 'first');
    assert.equal(documents.requests(path), 1);
    const first = await registrarMetrics();
    assert.ok((await authorizeOnly(op, clientId, REDIRECT_URI)).redirect, 'within the OP\'s TTL');
    assert.equal((await registrarMetrics()).resolves, first.resolves, 'answered from the OP\'s cache');
    await sleep(CACHE_TTL_SECS * 1000 + 200);
    assert.ok((await authorizeOnly(op, clientId, REDIRECT_URI)).redirect, 'past the OP\'s TTL');
    const later = await registrarMetrics();
    assert.ok(later.resolves > first.resolves, 'the OP asked POST /resolve again');
    assert.ok(later.documentHits > first.documentHits, 'the registrar found the document in its cache');
    // max-age=0 is clamped to the registrar's min_cache_secs (60 s): no new fetch
    assert.equal(documents.requests(path), 1, 'the registrar answered from its document cache');
  });

  test('registered client_ids still work at an OP that accepts documents', TIMEOUT, async () => {
    const registration = await registrar.register({
      software_statement: registrar.statement({
        software_id: 'cimd-registered',
        redirect_uris: [REDIRECT_URI],
        grant_types: ['authorization_code'],
        token_endpoint_auth_method: 'none',
      }),
    });
    const result = await codeFlow(op, registration, oidc.None());
    await assertIdToken(op, registration, result);
  });
});

/** The registrar's own POST /resolve answer about `clientId`. */
async function resolveAtRegistrar(clientId) {
  const response = await fetch(`${registrar.url}/resolve`, {
    method: 'POST',
    headers: { authorization: `Bearer ${registrar.apiToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ client_id: clientId }),
  });
  assert.equal(response.status, 200);
  return response.json();
}

/** What the registrar's metrics say: POST /resolve answered, document cache hits. */
async function registrarMetrics() {
  const text = await (await fetch(metricsUrl)).text();
  const value = (line) => {
    const found = text.split('\n').find((l) => l.startsWith(`${line} `));
    return found ? Number(found.slice(line.length + 1)) : 0;
  };
  return {
    resolves: value('stateless_dcr_http_request_duration_seconds_count{method="POST",route="/resolve",status="200"}'),
    documentHits: value('stateless_dcr_cache_lookups_total{cache="client_metadata",result="hit"}'),
  };
}

/**
 * A token request with a code that does not exist, the client_id in the body (RFC 6749 §2.3.1;
 * a public client sends nothing else), with `secret` as client_secret_post when given.
 */
async function tokenRequest(clientId, { secret } = {}) {
  const form = {
    grant_type: 'authorization_code', code: 'no-such-code', redirect_uri: REDIRECT_URI,
    code_verifier: 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk', client_id: clientId,
  };
  if (secret !== undefined) form.client_secret = secret;
  const response = await fetch(`${op.issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form),
  });
  return { status: response.status, body: await response.json() };
}
