// The other direction: the test is the federation authority. Its Status List Token is built
// with @sd-jwt/jwt-status-list, signed with jose and served over HTTPS; the registrar, which
// trusts the authority with `status_list_uris`, checks a software statement's
// `status.status_list` at registration and at every read (draft-ietf-oauth-status-list §6.2,
// §8.3). When the authority sets the entry to INVALID, the client is refused.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { generateKeyPair, importJWK } from 'jose';

import { LIST_TTL_SECS, signList, startListServer } from './helpers/authority.js';
import { registrarBinary, startRegistrar } from './helpers/registrar.js';

const PACKAGE_DIR = fileURLToPath(new URL('..', import.meta.url));
const TIMEOUT = { timeout: 60_000 };
const LIST_PATH = '/lists/1';
// `[fetch] status_list_min_cache_secs` of the registrar: with the list's ttl of 1 s it keeps a
// list at most CACHE_SECS, and a failed fetch no longer. Wait that, and half a second.
const CACHE_SECS = 1;
const REFETCHED_MS = Math.max(CACHE_SECS, LIST_TTL_SECS) * 1000 + 500;

let server;
let registrar;
let authorityKey; // { key, kid }: the key of the registrar's trusted issuer

const claims = (softwareId, idx, uri) => ({
  software_id: softwareId,
  client_name: `Interop ${softwareId}`,
  redirect_uris: [`https://${softwareId}.interop.example/callback`],
  grant_types: ['authorization_code'],
  status: { status_list: { idx, uri } },
});

describe('an authority\'s status list made with @sd-jwt/jwt-status-list, checked by the registrar', () => {
  before(async () => {
    server = await startListServer();
    registrar = await startRegistrar(registrarBinary(PACKAGE_DIR), {
      issuerExtra: `status_list_uris = ["${server.base}/lists/"]`,
      extraConfig: `
[fetch]
# TEST ONLY (docs/configuration.md): trust the list server's self-signed certificate, on loopback
extra_root_ca_file = "${server.certFile}"
allow_private_addresses = true
status_list_min_cache_secs = ${CACHE_SECS}
`,
    });
    const { kid, ...jwk } = registrar.authorityKey;
    authorityKey = { key: await importJWK(jwk, 'ES256'), kid };
  }, TIMEOUT);

  after(async () => {
    await registrar?.stop();
    await server?.stop();
  });

  const publish = async (invalid) => {
    const uri = `${server.base}${LIST_PATH}`;
    server.serve(LIST_PATH, await signList({ uri, ...authorityKey, invalid }));
  };

  test('a statement withdrawn in its issuer\'s list: its client gets 401, a new registration 400', TIMEOUT, async () => {
    const uri = `${server.base}${LIST_PATH}`;
    await publish([]); // every entry VALID
    const statement = registrar.statement(claims('interop-withdrawn', 5, uri));
    const first = await registrar.register({ software_statement: statement });
    assert.equal(first.status, 201, JSON.stringify(first.body));
    assert.ok(server.requests(LIST_PATH) >= 1, 'the registrar fetched the list');
    const other = await registrar.register({ software_statement: registrar.statement(claims('interop-kept', 6, uri)) });
    assert.equal(other.status, 201, JSON.stringify(other.body));
    assert.equal((await registrar.read(first.body)).status, 200);

    // the authority withdraws statement 5: index 5 INVALID in a newly signed list
    await publish([5]);
    await sleep(REFETCHED_MS);

    const read = await registrar.read(first.body);
    assert.equal(read.status, 401, JSON.stringify(read.body));
    assert.equal(read.body.error, 'invalid_token');
    const again = await registrar.register({ software_statement: statement });
    assert.equal(again.status, 400, JSON.stringify(again.body));
    assert.equal(again.body.error, 'unapproved_software_statement');
    // the other entry of the same list is untouched
    assert.equal((await registrar.read(other.body)).status, 200);
  });

  test('a list that does not verify with the authority\'s keys is never trusted', TIMEOUT, async () => {
    const uri = `${server.base}/lists/2`;
    const { privateKey } = await generateKeyPair('ES256');
    // the authority's kid, another key: the signature does not verify
    server.serve('/lists/2', await signList({ uri, key: privateKey, kid: authorityKey.kid }));
    const answer = await registrar.register({ software_statement: registrar.statement(claims('interop-forged', 0, uri)) });
    assert.equal(answer.status, 503, JSON.stringify(answer.body));
    assert.equal(answer.body.error, 'temporarily_unavailable');
    assert.ok(server.requests('/lists/2') >= 1, 'the registrar fetched the list');
  });
});
