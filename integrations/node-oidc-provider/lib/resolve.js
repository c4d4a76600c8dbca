// The two ways of answering "which client is this client_id, now?" (docs/integrations.md):
//
// - OfflineResolver verifies the client_id itself with the registrar's public keys, as
//   docs/integrations.md "(c) Offline, in any language" describes, and reads the client's entry
//   in the registrar's status lists (lib/status-list.js): it needs no network path to the
//   registrar but its /jwks and /status-lists/. A deleted client is unknown once the list shows
//   it; an updated one (its entry AMENDED) is asked of POST /resolve when `amendments` is
//   configured, and otherwise cannot be served (RegistrarUnavailable). Client_ids issued without
//   a `status` claim (status lists off at the registrar) keep their original metadata here.
// - OnlineResolver asks the registrar's POST /resolve, which applies the status records: it sees
//   deletes and updates, a few seconds late at most (its cache TTL). With `metadataDocuments`,
//   it also asks about client_ids that are https URLs (OAuth Client ID Metadata Documents,
//   draft-ietf-oauth-client-id-metadata-document): the registrar fetches and checks the
//   document; the OfflineResolver cannot (it fetches nothing but the registrar's keys and lists).
//
// Both answer a client (node-oidc-provider metadata and its expiry), null for "no such client"
// (anything malformed, forged, expired, deleted), or throw RegistrarUnavailable.
import { createHash } from 'node:crypto';

import { decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';

import { TtlCache } from './cache.js';
import { RegistrarUnavailable } from './errors.js';
import { RegistrarJwks } from './jwks.js';
import { AMENDED, RegistrarStatusLists, VALID } from './status-list.js';
import { providerMetadata, restoreDefaults, usesSecret } from './metadata.js';
import { deriveClientSecret } from './secret.js';

/** The `typ` of client_ids (RFC 8725 §3.11: no other token of the registrar passes for one). */
export const CLIENT_ID_TYP = 'client-id+jwt';
// The signing algorithms of registrar keys (docs/configuration.md "The registrar key file").
// Never `none` and never HS*: the key fixes the algorithm, and it is a public key.
const ALGORITHMS = ['ES256', 'ES384', 'ES512', 'EdDSA', 'RS256', 'PS256'];
// The registrar never issues a longer client_id (`client_id_max_length` is at most 65536).
export const MAX_CLIENT_ID_LENGTH = 65536;
// JWS compact serialization (RFC 7515 §7.1): three base64url parts.
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
// The registrar looks at no longer client identifier URL (src/documents/url.rs MAX_URL_BYTES).
export const MAX_DOCUMENT_URL_LENGTH = 2048;
// What POST /resolve says a client is (its `source`).
const SOURCE_CLIENT_ID = 'client_id';
const SOURCE_METADATA_DOCUMENT = 'metadata_document';

const isString = (value) => typeof value === 'string';
const isObject = (value) => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Whether `id` has the shape of a client_id at all; nothing else is worth a lookup. */
export function looksLikeClientId(id) {
  return isString(id) && id.length <= MAX_CLIENT_ID_LENGTH && COMPACT_JWS.test(id);
}

/**
 * Whether `id` may be a client identifier URL (the URL of a client ID metadata document): an
 * https URL of at most MAX_DOCUMENT_URL_LENGTH characters. The registrar checks the rest (normal
 * form, no fragment, no user name, no dot segments); a compact JWS never starts like this.
 */
export function looksLikeDocumentUrl(id) {
  return isString(id) && id.length <= MAX_DOCUMENT_URL_LENGTH && id.startsWith('https://');
}

export class OfflineResolver {
  /**
   * @param {{issuer: string, jwksUri: string|URL, clientSecretKeys?: Map<string, Buffer>,
   *   jwks?: object, statusLists?: object|false, amendments?: OnlineResolver,
   *   log?: Function}} options `jwks`: options of {@link RegistrarJwks}; `statusLists`: options
   *   of {@link RegistrarStatusLists} (its `base` defaults to `status-lists/` beside the
   *   jwks_uri), or false to read no list (deletes are then not seen); `amendments`: where the
   *   current metadata of an updated client is asked. `metadataDocuments` is refused here
   *   (a TypeError): only the registrar fetches and checks client ID metadata documents, so
   *   they need the online mode.
   */
  constructor({
    issuer, jwksUri, clientSecretKeys, jwks = {}, statusLists = {}, amendments,
    metadataDocuments = false, log = () => {},
  }) {
    if (!isString(issuer) || !issuer) throw new TypeError('issuer: the registrar\'s issuer is required');
    if (metadataDocuments !== false) {
      throw new TypeError('metadataDocuments: client ID metadata documents are resolved by the registrar\'s POST /resolve only; use mode "online"');
    }
    this.issuer = issuer;
    this.keys = new RegistrarJwks(jwksUri, { log, ...jwks });
    this.lists = statusLists === false ? undefined : new RegistrarStatusLists({
      base: String(new URL('status-lists/', this.keys.url)), keys: this.keys, log, ...statusLists,
    });
    this.amendments = amendments;
    this.clientSecretKeys = clientSecretKeys;
    this.log = log;
  }

  async resolve(clientId) {
    if (!looksLikeClientId(clientId)) return null;
    let header;
    try {
      header = decodeProtectedHeader(clientId);
    } catch {
      return null;
    }
    // The registrar requires exactly this typ and a kid (src/client_id.rs `verify`); jose's own
    // typ check ignores case and an "application/" prefix, so check it exactly here.
    if (header.typ !== CLIENT_ID_TYP || !isString(header.kid)) return null;
    let claims;
    try {
      ({ payload: claims } = await jwtVerify(clientId, (h) => this.keys.key(h), {
        issuer: this.issuer, // exact string comparison
        algorithms: ALGORITHMS,
        typ: CLIENT_ID_TYP,
        clockTolerance: 0, // the registrar refuses from the second of `exp` on, with no leeway
      }));
    } catch (err) {
      if (err instanceof RegistrarUnavailable) throw err;
      return null; // bad signature, unknown kid, wrong issuer, expired, not a JWT
    }
    if (!isString(claims.jti) || !Number.isSafeInteger(claims.iat) || !isObject(claims.metadata)
      || (claims.csk !== undefined && !isString(claims.csk))) {
      return null;
    }
    if (claims.status !== undefined && this.lists) {
      const value = await this.lists.status(claims.status);
      if (value === AMENDED) {
        if (this.amendments) return this.amendments.resolve(clientId);
        throw new RegistrarUnavailable('the client was updated at the registrar: its current metadata needs POST /resolve (set resolveUrl and apiToken)');
      }
      // INVALID (deleted), SUSPENDED, anything unknown, or no verdict: not a client
      if (value !== VALID) return null;
    }
    return client({
      clientId,
      label: claims.jti,
      jti: claims.jti,
      csk: claims.csk,
      issuedAt: claims.iat,
      expiresAt: claims.exp,
      metadata: restoreDefaults(claims.metadata),
    }, this.clientSecretKeys, this.log);
  }
}

export class OnlineResolver {
  /**
   * @param {{resolveUrl: string|URL, apiToken: string, clientSecretKeys?: Map<string, Buffer>,
   *   metadataDocuments?: boolean, cacheEntries?: number, cacheTtlSeconds?: number,
   *   timeoutMs?: number, log?: Function}} options `metadataDocuments`: also ask about
   *   client_ids that are https URLs (client ID metadata documents; the registrar needs
   *   `[client_id_metadata_documents] mode` on or allowed-hosts). Off by default: such a
   *   client_id is then unknown without a request.
   */
  constructor({
    resolveUrl, apiToken, clientSecretKeys, metadataDocuments = false, cacheEntries = 1000,
    cacheTtlSeconds = 5, timeoutMs = 5_000, log = () => {},
  }) {
    if (!isString(apiToken) || apiToken.length < 32) {
      throw new TypeError('apiToken: one of the registrar\'s resolve_api_tokens (at least 32 characters)');
    }
    if (typeof metadataDocuments !== 'boolean') {
      throw new TypeError('metadataDocuments: true or false');
    }
    this.metadataDocuments = metadataDocuments;
    this.url = new URL(resolveUrl);
    this.apiToken = apiToken;
    this.clientSecretKeys = clientSecretKeys;
    this.timeoutMs = timeoutMs;
    this.log = log;
    // Answers, "no such client" included, are kept cacheTtlSeconds (and never past the
    // client_id's exp): a delete or an update at the registrar is seen here that late at most.
    // Keyed by the client_id's SHA-256, so that long made-up client_ids cost no memory here.
    this.cache = new TtlCache({ maxEntries: cacheEntries, ttlMs: cacheTtlSeconds * 1000 });
  }

  async resolve(clientId) {
    const document = this.metadataDocuments && looksLikeDocumentUrl(clientId);
    if (!document && !looksLikeClientId(clientId)) return null;
    return this.cache.get(
      createHash('sha256').update(clientId).digest('base64url'),
      () => this.#ask(clientId, document),
      (found) => (found?.expiresAt ? found.expiresAt * 1000 - Date.now() : Infinity),
    );
  }

  async #ask(clientId, document) {
    let response;
    try {
      response = await fetch(this.url, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${this.apiToken}`,
          'content-type': 'application/json',
          accept: 'application/json',
        },
        body: JSON.stringify({ client_id: clientId }),
        redirect: 'error',
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (cause) {
      throw new RegistrarUnavailable(`POST ${this.url} failed: ${cause.message}`, { cause });
    }
    const body = await response.json().catch(() => undefined);
    // 400/413: the registrar could not take this client_id as a request at all; it is no client.
    if (response.status === 400 || response.status === 413) return null;
    // 401 (our API token), 404 (the API is off), 503 (its status store is down, so it cannot
    // tell whether the client was deleted: fail closed, docs/api.md): no verdict about the client.
    if (response.status !== 200 || !isObject(body)) {
      throw new RegistrarUnavailable(`POST ${this.url} answered ${response.status}${body?.error ? ` ${body.error}` : ''}`);
    }
    if (body.valid !== true) return null; // invalid_client: forged, expired, deleted
    const { client: current, expires_at: expiresAt, source = SOURCE_CLIENT_ID } = body;
    if (!isObject(current) || current.client_id !== clientId) return null;
    // The answer must be about the kind of client_id asked: a document for a URL, an issued
    // client_id for a JWS (registrars before documents say no `source`).
    if (source !== (document ? SOURCE_METADATA_DOCUMENT : SOURCE_CLIENT_ID)) {
      this.log('warn', `POST ${this.url} answered source ${JSON.stringify(source)} for a client_id ${document ? 'URL' : 'JWS'}; refusing the client`);
      return null;
    }
    const { client_id: _id, client_id_issued_at: issuedAt, ...metadata } = current;
    if (document) {
      // A document client has no JWT to read, and never a secret (the registrar refuses
      // shared-secret methods in documents; client() refuses them here too).
      return client({
        clientId,
        label: clientId,
        issuedAt,
        expiresAt: expiresAt ?? undefined,
        metadata: restoreDefaults(metadata),
      }, this.clientSecretKeys, this.log);
    }
    // The registrar has just verified this client_id, so its claims can be read unverified:
    // only `jti` and `csk` are taken, for the secret (POST /resolve does not answer it).
    let claims;
    try {
      claims = decodeJwt(clientId);
    } catch {
      return null;
    }
    return client({
      clientId,
      label: claims.jti,
      jti: claims.jti,
      csk: isString(claims.csk) ? claims.csk : undefined,
      issuedAt,
      expiresAt: expiresAt ?? undefined,
      metadata: restoreDefaults(metadata),
    }, this.clientSecretKeys, this.log);
  }
}

// The node-oidc-provider metadata of a resolved client, with its client_secret derived when it
// has one. null when the secret cannot be derived here: node-oidc-provider needs the secret
// itself (it compares client_secret_basic/_post secrets, checks client_secret_jwt MACs and keys
// HS* ID Tokens with it), so such a client cannot be served.
// `label` names the client in log lines: its jti, or the URL of a metadata document.
function client({
  clientId, label, jti, csk, issuedAt, expiresAt, metadata,
}, keys, log) {
  let clientSecret;
  if (csk !== undefined) {
    clientSecret = deriveClientSecret(keys, csk, jti);
    if (clientSecret === undefined) {
      log('warn', `client_secret key ${JSON.stringify(csk)} is not configured here; refusing client ${label}`);
      return null;
    }
  } else if (usesSecret(metadata)) {
    // Only possible online: an update gave a client that had no secret one, with a key the
    // amendment names, and POST /resolve does not say which; or a registrar answered a
    // metadata document client with a shared-secret method, which it must refuse.
    log('warn', `client ${label} authenticates with a secret but its client_id names no client_secret key; refusing it`);
    return null;
  }
  return {
    expiresAt,
    metadata: providerMetadata(metadata, { clientId, issuedAt, expiresAt, clientSecret }),
  };
}
