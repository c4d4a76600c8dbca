// From the registrar's view of a client to the metadata node-oidc-provider's Client model reads.
//
// A client_id carries its metadata in *compact* form: members equal to the spec defaults are
// left out to keep client_ids short (docs/design.md "Compact metadata"). restoreDefaults puts
// them back exactly as the registrar's parser does (src/metadata/mod.rs ClientMetadata::parse,
// called with SubjectType::Public by src/metadata/json.rs `compact::deserialize`).

// Grant types that use the authorization endpoint: only they imply the default response type
// (OIDC DCR §2); `client_credentials` alone implies none (RFC 7591 §2.1).
const REDIRECT_GRANTS = new Set(['authorization_code', 'implicit']);
// A client_id always carries an *_enc next to its *_alg, but the parser gives an alg alone the
// default enc A128CBC-HS256 (OIDC DCR §2), and so does restoreDefaults.
const ENCRYPTION_PAIRS = [
  ['id_token_encrypted_response_alg', 'id_token_encrypted_response_enc'],
  ['userinfo_encrypted_response_alg', 'userinfo_encrypted_response_enc'],
  ['request_object_encryption_alg', 'request_object_encryption_enc'],
];
const DEFAULT_ENC = 'A128CBC-HS256';

/**
 * The full metadata of a compact metadata object. JSON null counts as absent, as in the
 * registrar (RFC 7592 §2.2 lets a server ignore null values). Returns a new object.
 * @param {object} compact the `metadata` claim of a client_id (or of an amendment)
 */
export function restoreDefaults(compact) {
  const md = Object.fromEntries(Object.entries(compact).filter(([, value]) => value !== null));
  md.redirect_uris ??= [];
  md.grant_types ??= ['authorization_code'];
  md.response_types ??= md.grant_types.some((grant) => REDIRECT_GRANTS.has(grant)) ? ['code'] : [];
  md.application_type ??= 'web';
  md.subject_type ??= 'public';
  md.id_token_signed_response_alg ??= 'RS256';
  md.token_endpoint_auth_method ??= 'client_secret_basic';
  md.require_auth_time ??= false;
  for (const [alg, enc] of ENCRYPTION_PAIRS) {
    if (md[alg] !== undefined) md[enc] ??= DEFAULT_ENC;
  }
  return md;
}

/**
 * node-oidc-provider's client metadata (its Client schema, RFC 7591 §3.2.1 member names): the
 * registered metadata plus the members the registrar derives rather than stores. Members the
 * provider does not know (software_id, language-tagged names, ...) are dropped by the provider's
 * own schema.
 * @param {object} metadata full metadata (defaults restored)
 * @param {{clientId: string, issuedAt: number, expiresAt?: number|null, clientSecret?: string}} derived
 */
export function providerMetadata(metadata, { clientId, issuedAt, expiresAt, clientSecret }) {
  const md = { ...metadata, client_id: clientId, client_id_issued_at: issuedAt };
  if (clientSecret !== undefined) {
    md.client_secret = clientSecret;
    // RFC 7591 §3.2.1: 0 means the secret does not expire; the registrar's secret expires
    // with the client_id.
    md.client_secret_expires_at = expiresAt ?? 0;
  }
  return md;
}

/** Whether a client authenticates at the token endpoint with its client_secret. */
export function usesSecret(metadata) {
  return ['client_secret_basic', 'client_secret_post', 'client_secret_jwt']
    .includes(metadata.token_endpoint_auth_method);
}
