// stateless-dcr clients for node-oidc-provider: see README.md.
export { statelessDcrAdapter } from './adapter.js';
export { RegistrarUnavailable } from './errors.js';
export { RegistrarJwks } from './jwks.js';
export { providerMetadata, restoreDefaults } from './metadata.js';
export {
  CLIENT_ID_TYP, MAX_CLIENT_ID_LENGTH, MAX_DOCUMENT_URL_LENGTH, OfflineResolver, OnlineResolver,
  looksLikeClientId, looksLikeDocumentUrl,
} from './resolve.js';
export { deriveClientSecret, loadClientSecretKeys, parseClientSecretKeys } from './secret.js';

/**
 * The registrar's discovery document (GET /.well-known/openid-configuration): its `issuer`,
 * `jwks_uri` and `registration_endpoint`.
 * @param {string|URL} base the registrar's public URL
 */
export async function discoverRegistrar(base, { timeoutMs = 5_000 } = {}) {
  const url = new URL('.well-known/openid-configuration', `${String(base).replace(/\/*$/, '')}/`);
  const response = await fetch(url, { redirect: 'error', signal: AbortSignal.timeout(timeoutMs) });
  if (response.status !== 200) throw new Error(`${url}: HTTP ${response.status}`);
  const document = await response.json();
  for (const member of ['issuer', 'jwks_uri', 'registration_endpoint']) {
    if (typeof document[member] !== 'string') throw new Error(`${url}: no ${member}`);
  }
  return document;
}
