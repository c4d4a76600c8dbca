// End to end: a real stateless-dcr registrar, the example node-oidc-provider OP in both modes,
// and a relying party using openid-client. Every request goes over HTTP between processes.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import {
  decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, importJWK, SignJWT,
} from 'jose';
import * as oidc from 'openid-client';

import {
  OfflineResolver, OnlineResolver, RegistrarJwks, RegistrarUnavailable, deriveClientSecret,
  loadClientSecretKeys, statelessDcrAdapter,
} from '../lib/index.js';
import { startOp } from './helpers/op.js';
import { freePort } from './helpers/processes.js';
import {
  LIST_SIGN_INTERVAL_SECS, LIST_TTL_SECS, registrarBinary, startRegistrar,
} from './helpers/registrar.js';
import {
  REDIRECT_URI, assertIdToken, authorizeOnly, codeFlow,
} from './helpers/relying-party.js';

const PACKAGE_DIR = fileURLToPath(new URL('..', import.meta.url));
const NEW_REDIRECT_URI = 'https://rp.e2e.example/callback-v2';
// The online OP keeps POST /resolve answers this long: a delete or update shows after it.
const CACHE_TTL_SECS = 1;
// The offline OP fetches the registrar's JWKS again for an unknown kid at most this often.
const JWKS_REFETCH_SECS = 1;
// The offline OP sees a change in the registrar's status list within this long.
const LIST_DELAY_MS = (LIST_TTL_SECS + LIST_SIGN_INTERVAL_SECS) * 1000 + 500;
const TIMEOUT = { timeout: 60_000 };

/** The claims of a software statement for a web client of the code flow. */
const webClient = (extra = {}) => ({
  software_id: 'e2e-web',
  client_name: 'E2E relying party',
  redirect_uris: [REDIRECT_URI],
  grant_types: ['authorization_code', 'refresh_token'],
  scope: 'openid profile email',
  ...extra,
});

let registrar;
let ops; // { offline, online }
let rpKey; // the private_key_jwt client's key pair

describe('stateless-dcr clients at node-oidc-provider', () => {
  before(async () => {
    registrar = await startRegistrar(registrarBinary(PACKAGE_DIR));
    const [offline, online] = await Promise.all([
      startOp(registrar, 'offline', {
        OP_JWKS_REFETCH_SECS: String(JWKS_REFETCH_SECS),
        OP_STATUS_LIST_MIN_CACHE_SECS: '1',
        OP_CACHE_TTL_SECS: String(CACHE_TTL_SECS),
      }),
      startOp(registrar, 'online', { OP_CACHE_TTL_SECS: String(CACHE_TTL_SECS) }),
    ]);
    ops = { offline, online };
    const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
    rpKey = { privateKey, jwk: { ...await exportJWK(publicKey), kid: 'rp-key-1', alg: 'ES256', use: 'sig' } };
  }, TIMEOUT);

  after(async () => {
    const processes = [...Object.values(ops ?? {}), registrar].filter(Boolean);
    await Promise.all(processes.map((p) => p.stop()));
  });

  test('the OP\'s discovery sends clients to stateless-dcr to register', TIMEOUT, async () => {
    for (const op of Object.values(ops)) {
      const document = await (await fetch(`${op.issuer}/.well-known/openid-configuration`)).json();
      assert.equal(document.issuer, op.issuer);
      assert.equal(document.registration_endpoint, `${registrar.url}/register`);
      // and the OP serves no registration of its own
      const response = await fetch(`${op.issuer}/reg`, { method: 'POST' });
      assert.equal(response.status, 404);
    }
  });

  for (const mode of ['offline', 'online']) {
    test(`${mode}: code flow with PKCE, client_secret_basic, an ID token that verifies`, TIMEOUT, async () => {
      const registration = await register(webClient());
      assert.ok(registration.client_secret, 'the registrar issued a secret');
      const result = await codeFlow(ops[mode], registration, oidc.ClientSecretBasic(registration.client_secret));
      await assertIdToken(ops[mode], registration, result);
      // the access token works at the OP's UserInfo endpoint, with the email scope granted
      const userinfo = await oidc.fetchUserInfo(result.config, result.tokens.access_token, 'alice');
      assert.equal(userinfo.email, 'alice@example.test');
    });

    test(`${mode}: code flow with PKCE, private_key_jwt, an ID token that verifies`, TIMEOUT, async () => {
      const registration = await register(webClient({
        software_id: 'e2e-pkjwt',
        token_endpoint_auth_method: 'private_key_jwt',
        token_endpoint_auth_signing_alg: 'ES256',
        jwks: { keys: [rpKey.jwk] },
      }));
      assert.equal(registration.client_secret, undefined, 'no secret for private_key_jwt');
      const auth = oidc.PrivateKeyJwt({ key: rpKey.privateKey, kid: rpKey.jwk.kid });
      const result = await codeFlow(ops[mode], registration, auth);
      await assertIdToken(ops[mode], registration, result);

      // the same flow with a key the client did not register fails at the token endpoint
      const { privateKey: otherKey } = await generateKeyPair('ES256');
      await assert.rejects(
        codeFlow(ops[mode], registration, oidc.PrivateKeyJwt({ key: otherKey, kid: rpKey.jwk.kid })),
        (err) => err.error === 'invalid_client',
      );
    });
  }

  test('the adapter derives the secret the registrar returned, and restores the metadata defaults exactly', TIMEOUT, async () => {
    const document = await (await fetch(`${registrar.url}/.well-known/openid-configuration`)).json();
    const clientSecretKeys = loadClientSecretKeys(registrar.clientSecretKeysFile);
    const resolvers = {
      offline: new OfflineResolver({ issuer: document.issuer, jwksUri: document.jwks_uri, clientSecretKeys }),
      online: new OnlineResolver({
        resolveUrl: `${registrar.url}/resolve`, apiToken: registrar.apiToken, clientSecretKeys,
      }),
    };
    const shapes = [
      webClient(), // mostly defaults: the compact form leaves most members out
      webClient({ // every member the compact form can leave out, set to another value
        software_id: 'e2e-native',
        application_type: 'native',
        redirect_uris: ['http://127.0.0.1/callback', 'com.example.e2e:/callback'],
        grant_types: ['authorization_code'],
        token_endpoint_auth_method: 'none',
        id_token_signed_response_alg: 'ES256',
        require_auth_time: true,
        default_max_age: 600,
        'client_name#fr': 'Partie de confiance',
        contacts: ['ops@rp.e2e.example'],
      }),
      webClient({ // keys, an HMAC-signed ID Token and an encrypted one with a default enc
        software_id: 'e2e-keys',
        token_endpoint_auth_method: 'client_secret_post',
        userinfo_signed_response_alg: 'HS256',
        id_token_encrypted_response_alg: 'RSA-OAEP',
        jwks: { keys: [{ ...rpKey.jwk, use: undefined, alg: undefined }] },
      }),
      { software_id: 'e2e-refresh-only', grant_types: ['refresh_token'] }, // no response type
    ];
    for (const claims of shapes) {
      const registration = await register(claims);
      const {
        client_id: clientId, client_id_issued_at: issuedAt, client_secret: secret,
        client_secret_expires_at: secretExpiresAt, registration_access_token: _t,
        registration_client_uri: _u, software_statement: _s, ...registered
      } = registration;
      // the registrar's full form leaves out an empty redirect_uris
      const expected = { redirect_uris: [], ...registered, client_id: clientId, client_id_issued_at: issuedAt };
      if (secret !== undefined) Object.assign(expected, { client_secret: secret, client_secret_expires_at: secretExpiresAt });
      for (const [mode, resolver] of Object.entries(resolvers)) {
        const found = await resolver.resolve(clientId);
        assert.deepEqual(found?.metadata, expected, `${mode}, ${claims.software_id}`);
      }
      const { jti, csk } = decodeJwt(clientId);
      assert.equal(csk !== undefined, secret !== undefined, 'a csk exactly when a secret was issued');
      if (secret !== undefined) {
        assert.equal(deriveClientSecret(clientSecretKeys, csk, jti), secret);
        assert.match(secret, /^[A-Za-z0-9_-]{43}$/);
      }
    }
  });

  test('an update of the redirect URIs (RFC 7592 §2.2): both OPs follow, offline through the status list', TIMEOUT, async () => {
    const registration = await register(webClient({ software_id: 'e2e-update' }));
    const auth = oidc.ClientSecretBasic(registration.client_secret);
    for (const op of Object.values(ops)) await codeFlow(op, registration, auth); // cached by now

    const updated = await registrar.update(registration, {
      software_statement: registrar.statement(webClient({ software_id: 'e2e-update', redirect_uris: [NEW_REDIRECT_URI] })),
    });
    assert.deepEqual(updated.redirect_uris, [NEW_REDIRECT_URI]);
    assert.equal(updated.client_secret, registration.client_secret, 'the secret does not change on update');
    await sleep(CACHE_TTL_SECS * 1000 + 200);

    // online: the new redirect URI works, the old one is refused with an error page
    await codeFlow(ops.online, registration, auth, { redirectUri: NEW_REDIRECT_URI });
    const old = await authorizeOnly(ops.online, registration.client_id, REDIRECT_URI);
    assert.equal(old.response?.status, 400);
    assert.match(old.response.text, /redirect_uri did not match/);

    // offline: once the list shows the entry AMENDED, the OP asks POST /resolve for the
    // current metadata (the client_id itself still carries the old redirect URIs)
    await sleep(LIST_DELAY_MS);
    await codeFlow(ops.offline, registration, auth, { redirectUri: NEW_REDIRECT_URI });
    const stale = await authorizeOnly(ops.offline, registration.client_id, REDIRECT_URI);
    assert.equal(stale.response?.status, 400);
    assert.match(stale.response.text, /redirect_uri did not match/);
  });

  test('a delete (RFC 7592 §2.3): both OPs refuse the client, offline through the status list', TIMEOUT, async () => {
    const registration = await register(webClient({ software_id: 'e2e-delete' }));
    const auth = oidc.ClientSecretBasic(registration.client_secret);
    for (const op of Object.values(ops)) await codeFlow(op, registration, auth);

    assert.equal(await registrar.delete(registration), 204);
    await sleep(CACHE_TTL_SECS * 1000 + 200);

    await assertUnknownClient(ops.online, registration.client_id, registration.client_secret);
    await assert.rejects(codeFlow(ops.online, registration, auth), /status code 400.*invalid_client/s);

    // offline: the registrar's list shows the entry INVALID within its ttl and sign interval
    await sleep(LIST_DELAY_MS);
    await assertUnknownClient(ops.offline, registration.client_id, registration.client_secret);
    await assert.rejects(codeFlow(ops.offline, registration, auth), /status code 400.*invalid_client/s);
  });

  test('bad client_ids are unknown clients (invalid_client), and the OPs keep serving', TIMEOUT, async () => {
    // a client_id that expires in 2 s (the statement's exp bounds it)
    const expiring = await register(webClient({ software_id: 'e2e-expiring' }), 2);
    const good = await register(webClient({ software_id: 'e2e-good' }));
    const { exp } = decodeJwt(expiring.client_id);
    for (const op of Object.values(ops)) {
      assert.ok((await authorizeOnly(op, expiring.client_id, REDIRECT_URI)).redirect, 'valid before exp');
    }

    const [header, payload, signature] = good.client_id.split('.');
    const now = Math.floor(Date.now() / 1000);
    // the control: the registrar's own key, nothing changed, is accepted; each forgery below
    // differs from it in one respect only
    const control = await resign(good.client_id, { registrarKey: true });
    for (const op of Object.values(ops)) {
      assert.ok((await authorizeOnly(op, control, REDIRECT_URI)).redirect, `${op.mode}: control`);
    }
    const bad = {
      garbage: 'garbage',
      'three dots of nothing': 'a.b.c',
      'typ JWT, the registrar\'s key (RFC 8725 §3.11)': await resign(good.client_id, { registrarKey: true, header: { typ: 'JWT' } }),
      'typ in other letter case, the registrar\'s key': await resign(good.client_id, { registrarKey: true, header: { typ: 'Client-Id+JWT' } }),
      'no kid, the registrar\'s key': await resign(good.client_id, { registrarKey: true, header: { kid: undefined } }),
      'another issuer, the registrar\'s key': await resign(good.client_id, { registrarKey: true, claims: { iss: 'http://127.0.0.1:1' } }),
      'exp passed, the registrar\'s key': await resign(good.client_id, { registrarKey: true, claims: { exp: now - 1 } }),
      'signed by another registrar\'s key, same kid': await resign(good.client_id),
      'signed by another registrar\'s key, unknown kid': await resign(good.client_id, { header: { kid: 'not-a-registrar-kid' } }),
      'a payload that is not the signed one': `${header}.${Buffer.from(JSON.stringify({ ...decodeJwt(good.client_id), jti: 'AAAAAAAAAAAAAAAAAAAAAA' })).toString('base64url')}.${signature}`,
      'a signature cut short': `${header}.${payload}.${signature.slice(0, -4)}`,
      'long (50 kB: a token request body, too long for a request line)': `${header}.${'A'.repeat(50_000)}.${signature}`,
      'not even ASCII': `${header}.${payload}.${signature}é`,
    };

    const wait = exp * 1000 - Date.now();
    if (wait > 0) await sleep(wait + 100);
    bad.expired = expiring.client_id;

    for (const op of Object.values(ops)) {
      for (const [what, clientId] of Object.entries(bad)) {
        await assertUnknownClient(op, clientId, good.client_secret, `${op.mode}: ${what}`);
      }
      // still serving: discovery, and the good client authenticates (then has no such code)
      assert.ok(op.proc.alive(), `${op.mode} OP is running`);
      assert.equal((await fetch(`${op.issuer}/.well-known/openid-configuration`)).status, 200);
      const token = await tokenRequest(op, good.client_id, good.client_secret);
      assert.equal(token.status, 400);
      assert.equal(token.body.error, 'invalid_grant');
      assert.doesNotMatch(op.proc.output(), /server_error|Unhandled|TypeError/);
    }
  });

  test('online, with a registrar that cannot answer: temporarily_unavailable, never a 500', TIMEOUT, async () => {
    const registration = await register(webClient({ software_id: 'e2e-unavailable' }));
    const closed = await freePort();
    const variants = {
      'POST /resolve unreachable': { OP_RESOLVE_URL: `http://127.0.0.1:${closed}/resolve` },
      'an API token the registrar does not know': { OP_RESOLVE_TOKEN: 'x'.repeat(40) },
    };
    for (const [what, env] of Object.entries(variants)) {
      const op = await startOp(registrar, 'online', env);
      try {
        const token = await tokenRequest(op, registration.client_id, registration.client_secret);
        assert.equal(token.status, 400, what);
        assert.equal(token.body.error, 'temporarily_unavailable', what);
        const page = await authorizeOnly(op, registration.client_id, REDIRECT_URI);
        assert.equal(page.response?.status, 400, what);
        assert.match(page.response.text, /temporarily_unavailable/, what);
        assert.ok(op.proc.alive());
      } finally {
        await op.stop();
      }
    }
  });

  test('offline: a client_id signed with a rotated-in key verifies after one JWKS refetch', TIMEOUT, async () => {
    const before = await register(webClient({ software_id: 'e2e-before-rotation' }));
    await codeFlow(ops.offline, before, oidc.ClientSecretBasic(before.client_secret)); // old set cached
    const kid = await registrar.rotate();
    const after = await register(webClient({ software_id: 'e2e-after-rotation' }));
    assert.equal(decodeProtectedHeader(after.client_id).kid, kid);
    assert.notEqual(decodeProtectedHeader(before.client_id).kid, kid);
    await sleep(JWKS_REFETCH_SECS * 1000 + 100);
    for (const registration of [after, before]) { // the retired key is still listed: both verify
      await codeFlow(ops.offline, registration, oidc.ClientSecretBasic(registration.client_secret));
    }
  });

  test('the JWKS cache: kept for its max age, refetched for an unknown kid at most once per interval', TIMEOUT, async () => {
    // the registrar's real set, served by a stand-in whose answers the test controls
    const { keys } = await (await fetch(`${registrar.url}/jwks`)).json();
    let status = 200;
    const server = createServer((_req, res) => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }));
    });
    await new Promise((resolve) => { server.listen(0, '127.0.0.1', resolve); });
    try {
      let now = 0;
      const warnings = [];
      const jwks = new RegistrarJwks(`http://127.0.0.1:${server.address().port}/jwks`, {
        maxAgeMs: 300_000, refetchMs: 30_000, now: () => now, log: (_level, message) => warnings.push(message),
      });
      const known = { alg: 'ES256', kid: keys[0].kid };
      const unknown = { alg: 'ES256', kid: 'not-a-registrar-kid' };
      await jwks.key(known);
      assert.equal(jwks.fetches, 1);
      await assert.rejects(jwks.key(unknown), { code: 'ERR_JWKS_NO_MATCHING_KEY' });
      assert.equal(jwks.fetches, 1, 'just fetched: an unknown kid does not refetch');
      now += 30_000;
      await Promise.all([1, 2, 3].map(() => assert.rejects(jwks.key(unknown), { code: 'ERR_JWKS_NO_MATCHING_KEY' })));
      assert.equal(jwks.fetches, 2, 'an interval later, concurrent lookups share one refetch');
      await assert.rejects(jwks.key(unknown));
      assert.equal(jwks.fetches, 2, 'and none again within the interval');
      now += 300_000;
      status = 500;
      await jwks.key(known); // stale, and the refresh fails: the last good set stays in use
      assert.equal(jwks.fetches, 3, 'past its max age the set is fetched again');
      assert.match(warnings.join('\n'), /keeping the last good JWKS/);
      // never any set: nothing can be verified, which is not the client's fault
      const none = new RegistrarJwks(`http://127.0.0.1:${server.address().port}/jwks`, { now: () => now });
      await assert.rejects(none.key(known), RegistrarUnavailable);
    } finally {
      server.close();
    }
  });

  test('the adapter never throws on bad input', TIMEOUT, async () => {
    const adapter = statelessDcrAdapter({
      mode: 'offline', fallback: class {}, issuer: registrar.issuer, jwksUri: `${registrar.url}/jwks`,
    });
    const clients = adapter('Client');
    const header = (h) => Buffer.from(JSON.stringify(h)).toString('base64url');
    const es256 = header({ typ: 'client-id+jwt', kid: 'k', alg: 'ES256' });
    const inputs = [
      undefined, null, 42, {}, ['a.b.c'], '', 'x', 'a.b.c', '..', 'e30.e30.e30',
      `${header({ typ: 'client-id+jwt', kid: 'k', alg: 'none' })}.e30.`, // unsigned
      `${es256}.bm90IGpzb24.c2ln`, // payload not JSON
      `${header({ typ: 'client-id+jwt', kid: 'k', alg: 'HS256' })}.e30.c2ln`, // a MAC
      `${Buffer.from('not json').toString('base64url')}.e30.c2ln`,
    ];
    for (const id of inputs) {
      assert.equal(await clients.find(id), undefined, JSON.stringify(id));
    }
    // longer than any client_id the registrar issues: refused before any key lookup
    const fetches = adapter.resolver.keys.fetches;
    assert.equal(await clients.find(`${es256}.${'A'.repeat(70_000)}.c2ln`), undefined);
    assert.equal(adapter.resolver.keys.fetches, fetches);
  });
});

// --- the relying party -------------------------------------------------------------------

/** Register a client with a software statement made of `claims` (RFC 7591 §2.3, §3.1). */
function register(claims, lifetimeSecs) {
  return registrar.register({ software_statement: registrar.statement(claims, lifetimeSecs) });
}

/**
 * A token request with a code that does not exist, authenticated with the client_id and secret
 * in HTTP Basic (RFC 6749 §2.3.1), or in the body when `inBody` (a client_id too long for a
 * header).
 */
async function tokenRequest(op, clientId, secret, { inBody = false } = {}) {
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  const form = { grant_type: 'authorization_code', code: 'no-such-code', redirect_uri: REDIRECT_URI };
  if (inBody) {
    Object.assign(form, { client_id: clientId, client_secret: secret });
  } else {
    const basic = `${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`;
    headers.authorization = `Basic ${Buffer.from(basic).toString('base64')}`;
  }
  const response = await fetch(`${op.issuer}/token`, {
    method: 'POST', headers, body: new URLSearchParams(form),
  });
  return { status: response.status, body: await response.json() };
}

/**
 * The OP treats `clientId` as unknown: an error page at the authorization endpoint (no redirect,
 * RFC 6749 §4.1.2.1) and 401 invalid_client at the token endpoint (RFC 6749 §5.2).
 */
async function assertUnknownClient(op, clientId, secret, what = op.mode) {
  // A client_id longer than Node's 16 KiB of request headers cannot reach the authorization
  // endpoint (GET; node-oidc-provider 9 serves POST there only with enableHttpPostMethods):
  // it is presented in a token request's body instead.
  const long = clientId.length > 8000;
  if (!long) {
    const page = await authorizeOnly(op, clientId, REDIRECT_URI);
    assert.equal(page.response?.status, 400, `${what}: authorization endpoint`);
    assert.match(page.response.text, /<strong>error<\/strong>: invalid_client/, what);
  }
  const token = await tokenRequest(op, clientId, secret, { inBody: long });
  if (/^[\x20-\x7e]*$/.test(clientId)) {
    assert.equal(token.status, 401, `${what}: token endpoint`);
    assert.equal(token.body.error, 'invalid_client', what);
  } else {
    // not VSCHAR (RFC 6749 App. A.1): refused before any client lookup
    assert.equal(token.status, 400, `${what}: token endpoint`);
  }
}

/**
 * `clientId` signed again, with `header` and `claims` laid over its own (undefined removes a
 * member). With a fresh key (another registrar's: every field says it is ours, but it is not),
 * or with `registrarKey` the registrar's own signing key, which this test holds.
 */
async function resign(clientId, { registrarKey = false, header = {}, claims = {} } = {}) {
  let key;
  if (registrarKey) {
    const { signing } = JSON.parse(readFileSync(join(registrar.dir, 'registrar-keys.json'), 'utf8'));
    const jwk = signing.keys.find((k) => k.kid === signing.active);
    key = await importJWK(jwk, jwk.alg);
  } else {
    ({ privateKey: key } = await generateKeyPair('ES256'));
  }
  const defined = (o) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
  const token = await new SignJWT(defined({ ...decodeJwt(clientId), ...claims }))
    .setProtectedHeader(defined({ ...decodeProtectedHeader(clientId), ...header }))
    .sign(key);
  return lowS(token);
}

// The registrar accepts only the low-S form of an ES256 signature (one client_id string per
// client); jose signs with either. Replace s by n - s where needed.
const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
function lowS(token) {
  const [h, p, sig] = token.split('.');
  const bytes = Buffer.from(sig, 'base64url');
  if (bytes.length !== 64) return token;
  const s = BigInt(`0x${bytes.subarray(32).toString('hex')}`);
  if (s <= P256_N / 2n) return token;
  const low = Buffer.from((P256_N - s).toString(16).padStart(64, '0'), 'hex');
  return `${h}.${p}.${Buffer.concat([bytes.subarray(0, 32), low]).toString('base64url')}`;
}
