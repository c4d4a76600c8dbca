// The registrar's Token Status Lists (draft-ietf-oauth-status-list-18), read by the offline mode:
// a client_id names its entry in `status.status_list` ({idx, uri}); the registrar sets it to
// INVALID (1) when the client is deleted and to AMENDED (3) when it is updated (RFC 7592 §2.2,
// §2.3; docs/design.md "Status lists"). So an OP holding only the JWKS sees deletes and learns
// that an updated client's metadata is stale.
//
// A list is fetched only from under the registrar's own `/status-lists/` (never from a URI a
// token could point anywhere), verified with the registrar's keys (`typ` statuslist+jwt, `sub`
// the URI, §5.1), inflated with a cap (a ZLIB bomb is refused), and kept for its `ttl` within
// [minCacheSeconds, maxCacheSeconds], never past its `exp`. A list that cannot be fetched or
// does not verify, once the copy held is stale, throws RegistrarUnavailable: fail closed, as the
// registrar's own edge node does (the OP then answers temporarily_unavailable).
import { inflateSync } from 'node:zlib';

import { decodeProtectedHeader, jwtVerify } from 'jose';

import { RegistrarUnavailable } from './errors.js';

export const STATUS_LIST_TYP = 'statuslist+jwt';
/** Entry values (§7.1), and the registrar's application-specific AMENDED. */
export const VALID = 0;
export const INVALID = 1;
export const SUSPENDED = 2;
export const AMENDED = 3;

const ALGORITHMS = ['ES256', 'ES384', 'ES512', 'EdDSA', 'RS256', 'PS256'];
const isObject = (value) => typeof value === 'object' && value !== null && !Array.isArray(value);

export class RegistrarStatusLists {
  #lists = new Map(); // uri -> { bits, bytes, iat, freshUntil, exp }
  #inflight = new Map(); // uri -> Promise
  #failedAt = new Map(); // uri -> when a fetch last failed

  /**
   * @param {{base: string, keys: import('./jwks.js').RegistrarJwks, minCacheSeconds?: number,
   *   maxCacheSeconds?: number, maxBytes?: number, maxInflatedBytes?: number, maxLists?: number,
   *   timeoutMs?: number, log?: Function, now?: () => number}} options `base`: the registrar's
   *   `{public_url}/status-lists/`
   */
  constructor({
    base, keys, minCacheSeconds = 10, maxCacheSeconds = 3600, maxBytes = 1 << 20,
    maxInflatedBytes = 16 << 20, maxLists = 1024, timeoutMs = 5_000, log = () => {}, now = Date.now,
  }) {
    if (typeof base !== 'string' || !base.endsWith('/status-lists/')) {
      throw new TypeError('base: the registrar\'s {public_url}/status-lists/');
    }
    Object.assign(this, {
      base, keys, minCacheSeconds, maxCacheSeconds, maxBytes, maxInflatedBytes, maxLists, timeoutMs, log, now,
    });
  }

  /**
   * The value of the entry a client_id's `status` claim names; null when the claim is not a
   * reference into this registrar's lists or the index is outside the list (no verdict is
   * possible: the client is refused).
   */
  async status(claim) {
    const reference = isObject(claim) ? claim.status_list : undefined;
    if (!isObject(reference) || !Number.isSafeInteger(reference.idx) || reference.idx < 0
      || typeof reference.uri !== 'string' || !this.#ours(reference.uri)) {
      return null;
    }
    const list = await this.#list(reference.uri);
    const bit = reference.idx * list.bits;
    const byte = Math.floor(bit / 8);
    if (byte >= list.bytes.length) return null;
    return (list.bytes[byte] >> (bit % 8)) & ((1 << list.bits) - 1);
  }

  // `{base}{id}`, the id a decimal without leading zeros (the registrar's one spelling)
  #ours(uri) {
    return uri.startsWith(this.base) && /^(0|[1-9][0-9]{0,15})$/.test(uri.slice(this.base.length));
  }

  async #list(uri) {
    const now = this.now();
    const held = this.#lists.get(uri);
    if (held && now < held.freshUntil) return held;
    // a failed fetch is tried again at most every minCacheSeconds, however many requests come
    const failed = this.#failedAt.get(uri);
    if (failed !== undefined && now - failed < this.minCacheSeconds * 1000) {
      throw new RegistrarUnavailable(`the status list ${uri} cannot be fetched (failed lately)`);
    }
    let pending = this.#inflight.get(uri);
    if (!pending) {
      pending = this.#fetch(uri, held).finally(() => this.#inflight.delete(uri));
      this.#inflight.set(uri, pending);
    }
    return pending;
  }

  async #fetch(uri, held) {
    let list;
    try {
      list = await this.#fetchAndVerify(uri);
      // an older copy (a cache, a replay) never replaces a newer one
      if (held && list.iat < held.iat) throw new Error('the fetched list is older than the one held');
    } catch (cause) {
      this.#failedAt.set(uri, this.now());
      this.log('warn', `status list ${uri} cannot be used: ${cause.message}`);
      throw cause instanceof RegistrarUnavailable
        ? cause
        : new RegistrarUnavailable(`the status list ${uri} cannot be used: ${cause.message}`, { cause });
    }
    this.#failedAt.delete(uri);
    this.#lists.delete(uri);
    this.#lists.set(uri, list);
    while (this.#lists.size > this.maxLists) this.#lists.delete(this.#lists.keys().next().value);
    return list;
  }

  async #fetchAndVerify(uri) {
    const response = await fetch(uri, {
      headers: { accept: 'application/statuslist+jwt' },
      redirect: 'error',
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    if (response.status !== 200) throw new Error(`HTTP ${response.status}`);
    const token = (await readCapped(response, this.maxBytes)).trim();
    // jose's typ check ignores case and an "application/" prefix: check it exactly (§5.1)
    if (decodeProtectedHeader(token).typ !== STATUS_LIST_TYP) throw new Error(`typ is not ${STATUS_LIST_TYP}`);
    const { payload } = await jwtVerify(token, (h) => this.keys.key(h), {
      algorithms: ALGORITHMS, typ: STATUS_LIST_TYP, subject: uri, clockTolerance: 0,
    });
    const { status_list: statusList, iat, ttl, exp } = payload;
    if (!Number.isSafeInteger(iat)) throw new Error('no iat');
    if (!isObject(statusList) || ![1, 2, 4, 8].includes(statusList.bits) || typeof statusList.lst !== 'string') {
      throw new Error('status_list must have bits 1, 2, 4 or 8 and a lst');
    }
    let bytes;
    try {
      bytes = inflateSync(Buffer.from(statusList.lst, 'base64url'), { maxOutputLength: this.maxInflatedBytes });
    } catch (err) {
      throw new Error(`lst does not inflate within ${this.maxInflatedBytes} bytes: ${err.code ?? err.message}`);
    }
    const now = this.now();
    const seconds = Math.min(Math.max(Number.isFinite(ttl) && ttl > 0 ? ttl : this.minCacheSeconds,
      this.minCacheSeconds), this.maxCacheSeconds);
    let freshUntil = now + seconds * 1000;
    if (Number.isSafeInteger(exp)) freshUntil = Math.min(freshUntil, exp * 1000);
    return { bits: statusList.bits, bytes, iat, freshUntil };
  }
}

// The body as text, read no further than `maxBytes` whatever Content-Length says (or omits).
async function readCapped(response, maxBytes) {
  if (Number(response.headers.get('content-length') ?? 0) > maxBytes) {
    await response.body?.cancel();
    throw new Error(`larger than ${maxBytes} bytes`);
  }
  const chunks = [];
  let size = 0;
  for await (const chunk of response.body ?? []) {
    size += chunk.length;
    if (size > maxBytes) throw new Error(`larger than ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
