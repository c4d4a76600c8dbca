// The registrar's published keys (GET /jwks), for verifying client_ids offline.
//
// Kept in memory and refreshed when older than `maxAgeMs` (the registrar serves /jwks with
// max-age=300). A client_id whose `kid` is not in the set triggers one refetch, because the
// registrar may have rotated its signing key (docs/integrations.md "Keeping the keys current"),
// but at most one fetch per `refetchMs`, so a flood of made-up kids costs one fetch per period.
// A refresh that fails keeps the last good set: offline verification keeps working while the
// registrar is down. With no set at all, nothing can be verified: RegistrarUnavailable.
import { createLocalJWKSet, errors } from 'jose';

import { RegistrarUnavailable } from './errors.js';

export class RegistrarJwks {
  #select; // jose key selector over the last good set
  #fetchedAt = -Infinity;
  #attemptedAt = -Infinity;
  #refreshing; // the fetch in flight, shared by concurrent callers

  /**
   * @param {string|URL} url the registrar's jwks_uri
   * @param {{maxAgeMs?: number, refetchMs?: number, timeoutMs?: number,
   *   log?: (level: string, message: string) => void, now?: () => number}} [options]
   */
  constructor(url, {
    maxAgeMs = 300_000, refetchMs = 30_000, timeoutMs = 5_000, log = () => {}, now = Date.now,
  } = {}) {
    this.url = new URL(url);
    Object.assign(this, { maxAgeMs, refetchMs, timeoutMs, log, now });
  }

  /** How many fetches were made (for tests and diagnostics). */
  fetches = 0;

  /** A jose key function: the key for a JWS protected header. */
  async key(header) {
    if (!this.#select) {
      if (!this.#mayFetch()) throw new RegistrarUnavailable(`no keys from ${this.url} yet`);
      await this.#refresh();
    } else if (this.now() - this.#fetchedAt >= this.maxAgeMs && this.#mayFetch()) {
      await this.#refresh().catch((err) => this.log('warn', `keeping the last good JWKS: ${err.message}`));
    }
    try {
      return await this.#select(header);
    } catch (err) {
      // Unknown kid: perhaps a rotation. Fetch again, unless that was just done.
      if (!(err instanceof errors.JWKSNoMatchingKey) || !this.#mayFetch()) throw err;
      await this.#refresh();
      return this.#select(header);
    }
  }

  // A fetch in flight can always be joined; a new one starts at most once per refetchMs.
  #mayFetch() {
    return this.#refreshing !== undefined || this.now() - this.#attemptedAt >= this.refetchMs;
  }

  #refresh() {
    this.#refreshing ??= this.#fetch().finally(() => { this.#refreshing = undefined; });
    return this.#refreshing;
  }

  async #fetch() {
    this.#attemptedAt = this.now();
    this.fetches += 1;
    let jwks;
    try {
      const response = await fetch(this.url, {
        headers: { accept: 'application/json' },
        redirect: 'error',
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      if (response.status !== 200) throw new Error(`HTTP ${response.status}`);
      jwks = await response.json();
      this.#select = createLocalJWKSet(jwks); // checks that it is a JWK Set
    } catch (cause) {
      throw new RegistrarUnavailable(`fetching ${this.url} failed: ${cause.message}`, { cause });
    }
    this.#fetchedAt = this.now();
  }
}
