// The client_secret without storage (docs/design.md "Secrets without storage"): the registrar
// never stores it, it recomputes it, and so can any node that holds the registrar's
// `client_secret` key group (and only that group: never `signing` or
// `registration_access_token`, docs/integrations.md "What the registrar gives an OP").
//
//   client_secret = base64url( HMAC-SHA256( key, "client_secret" 0x00 jti 0x00 "0" 0x00 ) )
//
// with the key whose kid is the client's `csk`. The same bytes as src/client_id.rs `derive`
// and src/jose.rs `hmac_sha256` (every part is followed by one zero byte; the generation of a
// client_secret is always "0": it does not change on update).
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';

const PURPOSE = 'client_secret';
// src/keys: derivation keys must decode to at least 32 bytes.
const MIN_KEY_BYTES = 32;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

/**
 * Parse the registrar's `client_secret` key group. Accepts the whole registrar key file or a
 * file holding only `{"client_secret": {...}}` (what `jq '{client_secret}'` writes); every other
 * group is ignored, so a file with more in it never makes this adapter use more.
 * @param {object} json the parsed file
 * @returns {Map<string, Buffer>} kid -> key bytes
 */
export function parseClientSecretKeys(json) {
  const group = json?.client_secret;
  if (!group || !Array.isArray(group.keys)) {
    throw new TypeError('no "client_secret" key group (expected {"client_secret": {"keys": [...]}})');
  }
  const keys = new Map();
  for (const jwk of group.keys) {
    if (jwk?.kty !== 'oct' || typeof jwk.kid !== 'string' || typeof jwk.k !== 'string' || !BASE64URL.test(jwk.k)) {
      throw new TypeError('every client_secret key must be {"kty": "oct", "kid": ..., "k": base64url}');
    }
    const bytes = Buffer.from(jwk.k, 'base64url');
    if (bytes.length < MIN_KEY_BYTES) {
      throw new TypeError(`client_secret key ${jwk.kid} is shorter than ${MIN_KEY_BYTES} bytes`);
    }
    keys.set(jwk.kid, bytes);
  }
  return keys;
}

/** {@link parseClientSecretKeys} of a file. */
export function loadClientSecretKeys(path) {
  return parseClientSecretKeys(JSON.parse(readFileSync(path, 'utf8')));
}

/**
 * The client_secret of the client whose client_id has this `jti`, derived with the key `csk`.
 * @param {Map<string, Buffer>} keys from {@link parseClientSecretKeys}
 * @returns {string|undefined} undefined when that key is not configured here
 */
export function deriveClientSecret(keys, csk, jti) {
  const key = keys?.get(csk);
  if (key === undefined || typeof jti !== 'string') return undefined;
  const hmac = createHmac('sha256', key);
  for (const part of [PURPOSE, jti, '0']) {
    hmac.update(part, 'utf8');
    hmac.update(Buffer.of(0));
  }
  return hmac.digest('base64url'); // no padding: 43 characters
}
