// The client_secret derivation and the key file, without a registrar.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { deriveClientSecret, parseClientSecretKeys } from '../lib/index.js';

const k = (bytes) => Buffer.from(bytes).toString('base64url');

test('a fixed vector of the derivation (docs/design.md "Secrets without storage")', () => {
  const keys = new Map([['k', Buffer.alloc(32, 7)]]);
  // HMAC-SHA256(7 x 32, "client_secret" 0x00 "jti-golden" 0x00 "0" 0x00), base64url
  assert.equal(deriveClientSecret(keys, 'k', 'jti-golden'), 'piVbt9C3t8WgATPsR4M1p8pMhgYoGzB4t0bIMGsnwYw');
  assert.notEqual(deriveClientSecret(keys, 'k', 'jti-golden2'), deriveClientSecret(keys, 'k', 'jti-golden'));
  assert.equal(deriveClientSecret(keys, 'retired', 'jti-golden'), undefined, 'an unknown kid derives nothing');
});

test('only the client_secret group of a key file is read', () => {
  const file = {
    signing: { active: 's', keys: [{ kty: 'EC', kid: 's' }] },
    client_secret: { active: 'c2', keys: [{ kty: 'oct', kid: 'c1', k: k(Buffer.alloc(32, 1)) }, { kty: 'oct', kid: 'c2', k: k(Buffer.alloc(48, 2)) }] },
    registration_access_token: { active: 'r', keys: [{ kty: 'oct', kid: 'r', k: k(Buffer.alloc(32, 3)) }] },
  };
  const keys = parseClientSecretKeys(file);
  assert.deepEqual([...keys.keys()], ['c1', 'c2']);
  assert.deepEqual(keys.get('c2'), Buffer.alloc(48, 2));
});

test('a key file the registrar would refuse is refused', () => {
  const group = (keys) => ({ client_secret: { active: 'a', keys } });
  for (const [what, file] of Object.entries({
    'no group': { signing: {} },
    'not oct': group([{ kty: 'EC', kid: 'a', k: k(Buffer.alloc(32)) }]),
    'no kid': group([{ kty: 'oct', k: k(Buffer.alloc(32)) }]),
    'shorter than 32 bytes': group([{ kty: 'oct', kid: 'a', k: k(Buffer.alloc(31)) }]),
    'not base64url': group([{ kty: 'oct', kid: 'a', k: 'a+b/'.repeat(12) }]),
  })) {
    assert.throws(() => parseClientSecretKeys(file), TypeError, what);
  }
});
