// RegistrarStatusLists against lists served by a local HTTP server: good lists are read, and
// every kind of bad list (wrong typ, wrong sub, bad bits, a ZLIB bomb, garbage) fails closed.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { deflateSync } from 'node:zlib';

import { SignJWT, generateKeyPair } from 'jose';

import { RegistrarUnavailable } from '../lib/errors.js';
import { AMENDED, INVALID, RegistrarStatusLists, VALID } from '../lib/status-list.js';

let server;
let base;
let key;
const served = new Map(); // list id -> body

before(async () => {
  key = await generateKeyPair('ES256');
  server = createServer((req, res) => {
    const body = served.get(req.url.split('/').pop());
    res.writeHead(body === undefined ? 404 : 200, { 'content-type': 'application/statuslist+jwt' });
    res.end(body ?? '');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${server.address().port}/status-lists/`;
});
after(() => server.close());

// 2 bits per entry: entry 0 VALID, 1 INVALID, 2 VALID, 3 AMENDED
const bytes = Buffer.from([0b11_00_01_00, 0, 0, 0]);
async function list(id, { typ = 'statuslist+jwt', sub = `${base}${id}`, bits = 2, lst } = {}) {
  const token = await new SignJWT({ status_list: { bits, lst: lst ?? deflateSync(bytes).toString('base64url') }, ttl: 60 })
    .setProtectedHeader({ alg: 'ES256', typ, kid: 'k' })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(key.privateKey);
  served.set(String(id), token);
}
const lists = () => new RegistrarStatusLists({
  base, keys: { key: async () => key.publicKey }, minCacheSeconds: 1, maxInflatedBytes: 1024,
});
const at = (id, idx) => ({ status_list: { idx, uri: `${base}${id}` } });

describe('the registrar\'s status lists, read offline', () => {
  test('entries are read as the registrar wrote them', async () => {
    await list(0);
    const reader = lists();
    assert.equal(await reader.status(at(0, 0)), VALID);
    assert.equal(await reader.status(at(0, 1)), INVALID);
    assert.equal(await reader.status(at(0, 3)), AMENDED);
    assert.equal(await reader.status(at(0, 16)), null, 'outside the list: no verdict');
  });

  test('references that are not into this registrar\'s lists are refused without a fetch', async () => {
    const reader = lists();
    for (const claim of [
      null, 'x', {}, { status_list: { idx: -1, uri: `${base}0` } }, { status_list: { idx: 1.5, uri: `${base}0` } },
      { status_list: { idx: 0, uri: 'https://elsewhere.example/status-lists/0' } },
      { status_list: { idx: 0, uri: `${base}01` } }, { status_list: { idx: 0, uri: `${base}../jwks` } },
    ]) {
      assert.equal(await reader.status(claim), null, JSON.stringify(claim));
    }
  });

  test('a list that does not hold up fails closed', async () => {
    const bomb = deflateSync(Buffer.alloc(1 << 20)).toString('base64url'); // 1 MiB of zeros, cap 1 KiB
    const cases = [
      [1, { typ: 'JWT' }],
      [2, { sub: `${base}99` }],
      [3, { bits: 3 }],
      [4, { lst: bomb }],
      [5, { lst: 'not zlib' }],
    ];
    for (const [id, change] of cases) await list(id, change);
    served.set('6', 'garbage');
    served.set('8', 'x'.repeat(2 << 20)); // sent chunked, without Content-Length, over the 1 MiB cap
    for (const id of [1, 2, 3, 4, 5, 6, 7, 8]) {
      await assert.rejects(lists().status(at(id, 0)), RegistrarUnavailable, `list ${id}`);
    }
  });
});
