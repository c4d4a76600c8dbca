// The relying party of the end-to-end tests: openid-client 6 runs the authorization code flow
// with PKCE against the example OP, and the UserAgent (./user-agent.js) plays the browser.
import assert from 'node:assert/strict';

import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oidc from 'openid-client';

import { UserAgent } from './user-agent.js';

/** The redirect URI every test client registers (or names in its metadata document). */
export const REDIRECT_URI = 'https://rp.e2e.example/callback';

/**
 * The authorization code flow with PKCE (RFC 7636, S256) by openid-client: the authorization
 * request, the development login and consent at the OP, the code redeemed at the token endpoint.
 * `registration`: anything with the `client_id` (a registration, or `{ client_id: url }`).
 */
export async function codeFlow(op, registration, clientAuth, { redirectUri = REDIRECT_URI } = {}) {
  const config = await oidc.discovery(new URL(op.issuer), registration.client_id, undefined, clientAuth, {
    execute: [oidc.allowInsecureRequests], // the test OP is plain http on loopback
  });
  oidc.enableNonRepudiationChecks(config); // verify the ID Token's signature, too
  const codeVerifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid email',
    code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  const outcome = await new UserAgent().authorize(url.href, redirectUri);
  if (!outcome.redirect) {
    throw new Error(`the OP did not redirect back: status code ${outcome.response.status} ${outcome.response.text.slice(0, 2000)}`);
  }
  const tokens = await oidc.authorizationCodeGrant(config, new URL(outcome.redirect), {
    pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true,
  });
  return { tokens, claims: tokens.claims(), nonce, config };
}

/** Verify the ID Token with the OP's published keys (OIDC Core §3.1.3.7), not only openid-client. */
export async function assertIdToken(op, registration, { tokens, nonce }) {
  const jwks = createRemoteJWKSet(new URL(`${op.issuer}/jwks`));
  const { payload, protectedHeader } = await jwtVerify(tokens.id_token, jwks, {
    issuer: op.issuer, audience: registration.client_id,
  });
  assert.equal(protectedHeader.alg, 'RS256', 'the default id_token_signed_response_alg');
  assert.equal(payload.sub, 'alice');
  assert.equal(payload.nonce, nonce);
  assert.ok(tokens.access_token);
}

/**
 * Send an authorization request and return the OP's first answer: a redirect to its login
 * interaction (the client was accepted), or the response.
 */
export async function authorizeOnly(op, clientId, redirectUri) {
  const url = new URL(`${op.issuer}/auth`);
  url.search = new URLSearchParams({
    client_id: clientId, redirect_uri: redirectUri, response_type: 'code', scope: 'openid',
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256',
  });
  const first = await new UserAgent().request(url.href);
  // accepted: the OP sends the user agent to its login interaction
  if (first.status === 303 && first.location?.includes('/interaction/')) return { redirect: first.location };
  return { response: first };
}
