// A real stateless-dcr registrar for the test: fresh keys (`keys generate`), a federation
// authority of its own (`statement keygen`), a configuration file on a free loopback port with
// `management = "full"` and status lists signed again at most a second after a change, and the
// RFC 7591 / 7592 calls a client makes. Each call returns the status and the JSON body: the
// tests check both.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

// the process helpers of the node-oidc-provider integration, shared rather than copied
import { freePort, start, waitFor } from '../../../node-oidc-provider/test/helpers/processes.js';

export const AUTHORITY = 'https://federation.interop.example';

/** `[status_lists] sign_interval_secs`: a change shows in the served list within this. */
export const SIGN_INTERVAL_SECS = 1;

/** The registrar binary: STATELESS_DCR_BIN, relative to the package, or the debug build. */
export function registrarBinary(packageDir) {
  return resolve(packageDir, process.env.STATELESS_DCR_BIN ?? '../../target/debug/stateless-dcr');
}

// The registrar reads every STATELESS_DCR_* variable as a configuration option and refuses
// unknown ones (docs/configuration.md "Environment variables"), STATELESS_DCR_BIN included: it
// is configured by its file alone here.
const registrarEnv = Object.fromEntries(
  Object.entries(process.env).filter(([name]) => !name.startsWith('STATELESS_DCR_')),
);

/**
 * Start a registrar. `issuerExtra` is TOML added to its `[[trusted_issuers]]` entry for the
 * authority, `extraConfig` TOML tables appended to the configuration (`[fetch]`).
 * @param {string} bin
 * @param {{ issuerExtra?: string, extraConfig?: string }} [options]
 */
export async function startRegistrar(bin, { issuerExtra = '', extraConfig = '' } = {}) {
  if (!existsSync(bin)) {
    throw new Error(`no registrar binary at ${bin}: run \`cargo build\` in the repository, or set STATELESS_DCR_BIN`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'stateless-dcr-tsl-'));
  let proc;
  try {
    const run = (args, input) => execFileSync(bin, args, { cwd: dir, input, encoding: 'utf8', env: registrarEnv });
    run(['keys', 'generate', '--out', 'registrar-keys.json']);
    run(['statement', 'keygen', '--private', 'authority.private.jwk.json', '--jwks', 'authority.jwks.json']);
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    writeFileSync(join(dir, 'config.toml'), `
listen = "127.0.0.1:${port}"
public_url = "${url}"
keys = "registrar-keys.json"
keys_reload_secs = 0
management = "full"

[status_store]
kind = "embedded"
path = "status.redb"

[status_lists]
enabled = true
sign_interval_secs = ${SIGN_INTERVAL_SECS}

[[trusted_issuers]]
issuer = "${AUTHORITY}"
jwks_file = "authority.jwks.json"
${issuerExtra}
${extraConfig}
`);
    proc = start('stateless-dcr', bin, ['serve', '--config', 'config.toml'], { cwd: dir, env: registrarEnv, clearEnv: true });
    await waitFor(`${url}/.well-known/openid-configuration`, proc);

    const call = async (target, { method = 'GET', token, body } = {}) => {
      const headers = {};
      if (token) headers.authorization = `Bearer ${token}`;
      if (body !== undefined) headers['content-type'] = 'application/json';
      const response = await fetch(target, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      const text = await response.text();
      return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
    };

    return {
      url,
      dir,
      proc,
      /** The authority's private JWK (from `statement keygen`), for jose to sign lists with. */
      authorityKey: JSON.parse(readFileSync(join(dir, 'authority.private.jwk.json'), 'utf8')),
      /** A software statement signed by the authority (`statement sign`). */
      statement(claims, lifetimeSecs = 3600) {
        return run([
          'statement', 'sign', '--key', 'authority.private.jwk.json', '--claims', '-',
          '--lifetime', String(lifetimeSecs),
        ], JSON.stringify({ iss: AUTHORITY, ...claims })).trim();
      },
      /** RFC 7591 §3.1: POST /register. */
      register: (body) => call(`${url}/register`, { method: 'POST', body }),
      /** RFC 7592 §2.1: GET the client's configuration with its token. */
      read: (registration) => call(registration.registration_client_uri, { token: registration.registration_access_token }),
      /** RFC 7592 §2.2: PUT the client's whole metadata with its token. */
      update: (registration, body) => call(registration.registration_client_uri, {
        method: 'PUT', token: registration.registration_access_token, body,
      }),
      /** RFC 7592 §2.3: DELETE the client with its token. */
      delete: (registration) => call(registration.registration_client_uri, {
        method: 'DELETE', token: registration.registration_access_token,
      }),
      get: (path) => fetch(new URL(path, url)),
      async stop() {
        await proc.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    if (proc) await proc.stop();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/**
 * The body of an RFC 7592 §2.2 update: the client's metadata as the registrar last returned it,
 * without the four members a client must not send and without the statement (not presented
 * again), with `changes` over it.
 */
export function updateBody(registration, changes = {}) {
  const {
    registration_access_token: _t, registration_client_uri: _u, client_secret_expires_at: _e,
    client_id_issued_at: _i, software_statement: _s, ...metadata
  } = registration;
  return { ...metadata, ...changes };
}
