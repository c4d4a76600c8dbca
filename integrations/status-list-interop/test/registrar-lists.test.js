// The registrar's Status List Tokens (draft-ietf-oauth-status-list §5, §6.2), read by an
// independent implementation: a client_id is a Referenced Token; after an RFC 7592 DELETE and
// PUT, the list its `status.status_list.uri` names, verified with jose against the registrar's
// /jwks and decoded by @sd-jwt/jwt-status-list, says INVALID (1) and AMENDED (3).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { getListFromStatusListJWT, getStatusListFromJWT } from '@sd-jwt/jwt-status-list';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';

import { SIGN_INTERVAL_SECS, registrarBinary, startRegistrar, updateBody } from './helpers/registrar.js';

const PACKAGE_DIR = fileURLToPath(new URL('..', import.meta.url));
const TIMEOUT = { timeout: 60_000 };
// The registrar signs a list again at most SIGN_INTERVAL_SECS after an entry changed (at the
// next GET once that time has passed since the last signature): wait that, and half a second.
const RESIGNED_MS = SIGN_INTERVAL_SECS * 1000 + 500;

// Status values (§7.1); 3 is the registrar's application-specific "updated" (docs).
const VALID = 0;
const INVALID = 1;
const AMENDED = 3;

const claims = (softwareId) => ({
  software_id: softwareId,
  client_name: `Interop ${softwareId}`,
  redirect_uris: [`https://${softwareId}.interop.example/callback`],
  grant_types: ['authorization_code'],
});

let registrar;

describe('the registrar\'s status lists, read with @sd-jwt/jwt-status-list', () => {
  before(async () => {
    registrar = await startRegistrar(registrarBinary(PACKAGE_DIR));
  }, TIMEOUT);

  after(async () => {
    await registrar?.stop();
  });

  /** Register a client with a statement; the 201 body. */
  async function register(softwareId) {
    const answer = await registrar.register({ software_statement: registrar.statement(claims(softwareId)) });
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    return answer.body;
  }

  /** GET a Status List Token, verify it with jose against /jwks; its header, claims and list. */
  async function fetchList(uri) {
    const response = await fetch(uri, { headers: { accept: 'application/statuslist+jwt' } });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'application/statuslist+jwt');
    const token = await response.text();
    const jwks = await (await registrar.get('/jwks')).json();
    const header = decodeProtectedHeader(token);
    assert.equal(header.typ, 'statuslist+jwt'); // §5.1: exactly, as the registrar writes it
    const key = jwks.keys.find((k) => k.kid === header.kid);
    assert.ok(key, `kid ${header.kid} is in /jwks`);
    // the algorithm the registrar publishes for that key, not the one the token names
    const { payload } = await jwtVerify(token, createLocalJWKSet(jwks), {
      typ: 'statuslist+jwt', algorithms: [key.alg], subject: uri,
    });
    assert.equal(typeof payload.iat, 'number');
    assert.ok(payload.exp > payload.iat, 'exp after iat');
    assert.ok(Number.isInteger(payload.ttl) && payload.ttl > 0, 'a positive ttl');
    assert.equal(payload.status_list.bits, 2);
    // decoded by the package from the token as served (it verifies nothing itself)
    return { header, payload, list: getListFromStatusListJWT(token) };
  }

  test('discovery and the aggregation name the lists', TIMEOUT, async () => {
    const discovery = await (await registrar.get('/.well-known/openid-configuration')).json();
    assert.equal(discovery.status_list_aggregation_endpoint, `${registrar.url}/status-lists`);
    const registration = await register('interop-aggregation');
    const { uri } = getStatusListFromJWT(registration.client_id);
    const aggregation = await (await fetch(discovery.status_list_aggregation_endpoint)).json();
    assert.ok(aggregation.status_lists.includes(uri), `${uri} in ${JSON.stringify(aggregation)}`);
  });

  test('a deleted client is INVALID, an updated one AMENDED, a live one VALID', TIMEOUT, async () => {
    const deleted = await register('interop-deleted');
    const live = await register('interop-live');
    const updated = await register('interop-updated');

    // each client_id is a Referenced Token (§6.2): the package reads its status claim
    const refs = [deleted, live, updated].map((r) => getStatusListFromJWT(r.client_id));
    for (const ref of refs) {
      assert.ok(Number.isInteger(ref.idx) && ref.idx >= 0, `idx ${ref.idx}`);
      assert.ok(ref.uri.startsWith(`${registrar.url}/status-lists/`), ref.uri);
    }
    assert.equal(new Set(refs.map((r) => `${r.uri}#${r.idx}`)).size, 3, 'three different entries');
    const [deletedRef, liveRef, updatedRef] = refs;

    // before any change: all three VALID
    for (const ref of refs) {
      const { list } = await fetchList(ref.uri);
      assert.equal(list.getStatus(ref.idx), VALID);
    }

    // RFC 7592 §2.3 DELETE, and §2.2 PUT of the whole metadata with one member added
    assert.equal((await registrar.delete(deleted)).status, 204);
    const answer = await registrar.update(updated, updateBody(updated, { contacts: ['ops@interop.example'] }));
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.deepEqual(answer.body.contacts, ['ops@interop.example']);
    assert.equal(answer.body.client_id, updated.client_id, 'the client_id does not change');
    assert.equal((await registrar.read(deleted)).status, 401);

    await sleep(RESIGNED_MS);
    const lists = new Map();
    for (const ref of refs) if (!lists.has(ref.uri)) lists.set(ref.uri, await fetchList(ref.uri));
    assert.equal(lists.get(deletedRef.uri).list.getStatus(deletedRef.idx), INVALID, 'deleted');
    assert.equal(lists.get(liveRef.uri).list.getStatus(liveRef.idx), VALID, 'live');
    assert.equal(lists.get(updatedRef.uri).list.getStatus(updatedRef.idx), AMENDED, 'updated');
  });
});
