// node-oidc-provider 9 looks every client up through its adapter: `Client.find(id)` calls
// `adapter('Client').find(id)` and builds the client from the metadata returned, on every use
// (lib/models/client.js; it caches only the built Client, keyed by a hash of that metadata).
// Returning undefined makes the client unknown: `invalid_client` at the token endpoint, an error
// page (never a redirect, RFC 6749 §4.1.2.1) at the authorization endpoint.
//
// This adapter answers the Client model from stateless-dcr client_ids, and hands every other
// model (sessions, codes, tokens, grants, interactions) to the adapter you already use.
// With `metadataDocuments` (online), it also answers client_ids that are the https URLs of
// Client ID Metadata Documents, as the registrar resolves them. Keep node-oidc-provider's own
// `features.clientIdMetadataDocument` disabled: Client.find falls back to it for any URL the
// adapter calls unknown, and it would fetch and accept documents the registrar refused.
import { errors } from 'oidc-provider';

import { RegistrarUnavailable } from './errors.js';
import { OfflineResolver, OnlineResolver } from './resolve.js';

const READ_ONLY = 'clients are registered at stateless-dcr, not at this OP: keep features.registration disabled';

/**
 * An `adapter` for node-oidc-provider's configuration.
 *
 * @param {object} options
 * @param {'offline'|'online'} options.mode offline: verify client_ids with the registrar's JWKS
 *   and read their entries in its status lists (sees deletes within the lists' ttl; an updated
 *   client needs resolveUrl and apiToken too); online: ask the registrar's POST /resolve.
 * @param {Function} options.fallback the adapter (class or factory, as node-oidc-provider's
 *   `adapter` option takes) for every model but Client.
 * @param {Map<string, Buffer>} [options.clientSecretKeys] the registrar's client_secret keys
 *   ({@link loadClientSecretKeys}); without them, clients that have a secret are refused.
 * @param {string} [options.issuer] offline: the registrar's issuer, exactly.
 * @param {string|URL} [options.jwksUri] offline: the registrar's jwks_uri.
 * @param {object} [options.jwks] offline: {maxAgeMs, refetchMs, timeoutMs} of the JWKS cache.
 * @param {object|false} [options.statusLists] offline: {minCacheSeconds, maxCacheSeconds,
 *   maxBytes, maxInflatedBytes, timeoutMs} of the status list cache, or false to read none.
 * @param {string|URL} [options.resolveUrl] online (and offline, for updated clients): the
 *   registrar's POST /resolve URL.
 * @param {string} [options.apiToken] online (and offline, for updated clients): one of the
 *   registrar's resolve_api_tokens.
 * @param {boolean} [options.metadataDocuments] online only (a TypeError offline): also accept
 *   client_ids that are https URLs of OAuth Client ID Metadata Documents, fetched and checked by
 *   the registrar's POST /resolve (its `[client_id_metadata_documents] mode` must be on or
 *   allowed-hosts). Default false: such a client_id is unknown, without a request.
 * @param {number} [options.cacheEntries] online: answers kept (default 1000).
 * @param {number} [options.cacheTtlSeconds] online: how long an answer is kept (default 5).
 * @param {number} [options.timeoutMs] online: timeout of one POST /resolve (default 5000).
 * @param {(level: 'warn'|'error', message: string) => void} [options.log]
 */
export function statelessDcrAdapter({ mode, fallback, log = defaultLog, ...options }) {
  if (typeof fallback !== 'function') {
    throw new TypeError('fallback: the adapter for every model but Client (a class or a factory)');
  }
  let resolver;
  if (mode === 'offline') {
    // updated clients are asked of the registrar, when a token for it is given
    // (metadataDocuments is refused offline, by OfflineResolver: documents need mode online)
    const amendments = options.apiToken && options.resolveUrl
      ? new OnlineResolver({ ...options, metadataDocuments: false, log })
      : undefined;
    resolver = new OfflineResolver({ ...options, amendments, log });
  }
  else if (mode === 'online') resolver = new OnlineResolver({ ...options, log });
  else throw new TypeError('mode must be "offline" or "online"');

  const clients = {
    async find(id) {
      try {
        return (await resolver.resolve(id))?.metadata;
      } catch (err) {
        if (err instanceof RegistrarUnavailable) {
          // No verdict on the client: say so (temporarily_unavailable, RFC 6749 §4.1.2.1,
          // a 400 in node-oidc-provider) rather than call a good client unknown.
          log('warn', err.message);
          throw new errors.TemporarilyUnavailable('the client registry cannot be reached; try again later');
        }
        // A defect here must not turn a client_id into a 500: the client is unknown.
        log('error', `resolving a client_id failed: ${err?.stack ?? err}`);
        return undefined;
      }
    },
    async upsert() { throw new Error(READ_ONLY); },
    async destroy() { throw new Error(READ_ONLY); },
    async consume() {},
    async findByUid() { return undefined; },
    async findByUserCode() { return undefined; },
    async revokeByGrantId() {},
  };

  const other = (model) => (isClass(fallback) ? new fallback(model) : fallback(model)); // eslint-disable-line new-cap
  const adapter = (model) => (model === 'Client' ? clients : other(model));
  adapter.resolver = resolver; // resolver.resolve(clientId): the same answer, for diagnostics
  return adapter;
}

function isClass(fn) {
  return /^class[\s{]/.test(Function.prototype.toString.call(fn));
}

function defaultLog(level, message) {
  (level === 'error' ? console.error : console.warn)(`stateless-dcr adapter: ${message}`);
}
