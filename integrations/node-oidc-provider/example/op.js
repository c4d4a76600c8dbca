// An OpenID Provider (node-oidc-provider 9) whose clients are stateless-dcr registrations.
// Start it next to a registrar; see ../README.md for every variable. A development setup:
// devInteractions (any login and password), in-memory sessions and grants, and, unless
// OP_JWKS_FILE names a key set, signing keys generated at each start.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';
// node-oidc-provider's own development store (an LRU of about 1000 entries). It keeps
// everything but clients here; in production pass your real adapter (Redis, SQL...) instead.
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';

import { discoverRegistrar, loadClientSecretKeys, statelessDcrAdapter } from '../lib/index.js';

const env = process.env;
const host = env.OP_HOST ?? '127.0.0.1';
const port = Number(env.OP_PORT ?? 3000);
const issuer = env.OP_ISSUER ?? `http://${host}:${port}`;
const mode = env.OP_MODE ?? 'offline';
// Client ID Metadata Documents: client_ids that are https URLs, resolved by the registrar
// (its [client_id_metadata_documents] mode on); online mode only.
const metadataDocuments = env.OP_METADATA_DOCUMENTS === 'true';
if (![undefined, 'true', 'false'].includes(env.OP_METADATA_DOCUMENTS)) {
  throw new Error(`OP_METADATA_DOCUMENTS must be true or false, not ${JSON.stringify(env.OP_METADATA_DOCUMENTS)}`);
}

// The registrar's issuer, jwks_uri and registration_endpoint, from its discovery document.
const registrar = await discoverRegistrar(env.OP_REGISTRAR_URL ?? 'http://127.0.0.1:8080');
if (env.OP_REGISTRAR_ISSUER && env.OP_REGISTRAR_ISSUER !== registrar.issuer) {
  throw new Error(`the registrar says its issuer is ${registrar.issuer}, not ${env.OP_REGISTRAR_ISSUER}`);
}

const adapter = statelessDcrAdapter({
  mode,
  fallback: MemoryAdapter,
  // Only the client_secret group of the registrar key file (jq '{client_secret}' keys.json).
  clientSecretKeys: env.OP_CLIENT_SECRET_KEYS
    ? loadClientSecretKeys(env.OP_CLIENT_SECRET_KEYS)
    : undefined,
  // offline
  issuer: registrar.issuer,
  jwksUri: registrar.jwks_uri,
  jwks: {
    maxAgeMs: 1000 * Number(env.OP_JWKS_MAX_AGE_SECS ?? 300),
    refetchMs: 1000 * Number(env.OP_JWKS_REFETCH_SECS ?? 30),
  },
  // offline: the registrar's status lists, kept for their ttl within these bounds
  statusLists: env.OP_STATUS_LISTS === 'false' ? false : {
    minCacheSeconds: Number(env.OP_STATUS_LIST_MIN_CACHE_SECS ?? 10),
    maxCacheSeconds: Number(env.OP_STATUS_LIST_MAX_CACHE_SECS ?? 3600),
  },
  // online: POST /resolve sits next to /register, under the registrar's public_url
  resolveUrl: env.OP_RESOLVE_URL ?? new URL('resolve', registrar.registration_endpoint),
  apiToken: env.OP_RESOLVE_TOKEN,
  cacheTtlSeconds: Number(env.OP_CACHE_TTL_SECS ?? 5),
  cacheEntries: Number(env.OP_CACHE_ENTRIES ?? 1000),
  metadataDocuments, // online only: the adapter refuses it offline
});
if (metadataDocuments && registrar.client_id_metadata_document_supported !== true) {
  console.warn('OP_METADATA_DOCUMENTS=true, but the registrar\'s discovery does not say client_id_metadata_document_supported: it will refuse every document client');
}

const provider = new Provider(issuer, {
  adapter,
  jwks: env.OP_JWKS_FILE ? JSON.parse(readFileSync(env.OP_JWKS_FILE, 'utf8')) : await developmentKeys(),
  cookies: { keys: env.OP_COOKIE_KEYS ? env.OP_COOKIE_KEYS.split(',') : [randomBytes(32).toString('base64url')] },
  claims: { openid: ['sub'], profile: ['name'], email: ['email', 'email_verified'] },
  scopes: ['openid', 'offline_access', 'profile', 'email'],
  // Development accounts: whoever signs in at the devInteractions form, with any password.
  findAccount: (_ctx, sub) => ({
    accountId: sub,
    claims: () => ({ sub, name: sub, email: `${sub}@example.test`, email_verified: false }),
  }),
  ttl: {
    AccessToken: 3600, AuthorizationCode: 60, IdToken: 3600, Interaction: 3600,
    Grant: 14 * 86400, Session: 14 * 86400, RefreshToken: 14 * 86400,
  },
  // The authorization code flow only (RFC 9700 §2.1.2), always with PKCE (RFC 9700 §2.1.1).
  // The registrar's [policy] should allow no more than this: a client registered with a
  // response type or grant type the OP does not serve is refused here (invalid_client_metadata).
  responseTypes: ['code'],
  pkce: { required: () => true },
  clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt', 'none'],
  features: {
    devInteractions: { enabled: env.OP_DEV_INTERACTIONS !== 'false' },
    // Registration happens at stateless-dcr. The discovery document still points clients
    // there: `discovery` fills in members the provider leaves undefined, and with registration
    // disabled it leaves registration_endpoint undefined (lib/actions/discovery.js).
    registration: { enabled: false },
    // Kept off: documents are fetched and checked by the registrar, through the adapter
    // (OP_METADATA_DOCUMENTS). This feature would fetch any URL the adapter calls unknown.
    clientIdMetadataDocument: { enabled: false },
  },
  discovery: {
    registration_endpoint: registrar.registration_endpoint,
    // draft-ietf-oauth-client-id-metadata-document: this OP accepts URLs as client_ids
    ...(metadataDocuments ? { client_id_metadata_document_supported: true } : {}),
  },
});

provider.listen(port, host, () => {
  console.log(`node-oidc-provider listening on ${issuer} (${mode}${metadataDocuments ? ', client ID metadata documents' : ''}), clients from ${registrar.issuer}`);
});

// An RS256 key (the default id_token_signed_response_alg, OIDC DCR §2) and an ES256 one.
async function developmentKeys() {
  console.warn('OP_JWKS_FILE is not set: signing with keys generated for this run only');
  const keys = [];
  for (const alg of ['RS256', 'ES256']) {
    const { privateKey } = await generateKeyPair(alg, { extractable: true });
    keys.push({ ...await exportJWK(privateKey), alg, use: 'sig', kid: `${alg}-${randomBytes(6).toString('base64url')}` });
  }
  return { keys };
}
