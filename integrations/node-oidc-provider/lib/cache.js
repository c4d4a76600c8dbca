// A small bounded cache with a time to live per entry, and sharing of lookups in flight, so that
// the several Client.find calls node-oidc-provider makes for one request cost one lookup.
// Eviction is oldest-inserted first: enough for a cache whose entries live seconds.

export class TtlCache {
  #entries = new Map(); // key -> { value, expires }
  #inflight = new Map(); // key -> Promise

  /** @param {{maxEntries: number, ttlMs: number, now?: () => number}} options */
  constructor({ maxEntries, ttlMs, now = Date.now }) {
    this.maxEntries = maxEntries;
    this.ttlMs = ttlMs;
    this.now = now;
  }

  get size() { return this.#entries.size; }

  /**
   * The cached value of `key`, or the value `load()` resolves to, which is then kept for
   * `ttlOf(value)` ms (at most the cache's TTL; 0 keeps nothing). A load that throws is not
   * cached: the next call tries again.
   */
  async get(key, load, ttlOf = () => this.ttlMs) {
    const entry = this.#entries.get(key);
    if (entry && entry.expires > this.now()) return entry.value;
    if (entry) this.#entries.delete(key);
    let pending = this.#inflight.get(key);
    if (!pending) {
      pending = (async () => {
        try {
          const value = await load();
          this.#set(key, value, Math.min(this.ttlMs, ttlOf(value)));
          return value;
        } finally {
          this.#inflight.delete(key);
        }
      })();
      this.#inflight.set(key, pending);
    }
    return pending;
  }

  clear() { this.#entries.clear(); }

  #set(key, value, ttlMs) {
    if (!(ttlMs > 0) || this.maxEntries < 1) return;
    this.#entries.delete(key);
    this.#entries.set(key, { value, expires: this.now() + ttlMs });
    while (this.#entries.size > this.maxEntries) {
      this.#entries.delete(this.#entries.keys().next().value);
    }
  }
}
