// A real stateless-dcr registrar for the test: fresh keys (`keys generate`), a federation
// authority of its own (`statement keygen`), a configuration file on a free loopback port, and
// the RFC 7591 / 7592 calls a client makes.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { freePort, start, waitFor } from './processes.js';

export const AUTHORITY = 'https://federation.e2e.example';
/** The registrar's status lists: kept this long by verifiers, signed again this often. */
export const LIST_TTL_SECS = 2;
export const LIST_SIGN_INTERVAL_SECS = 1;

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
 * Start a registrar. `extraConfig`: TOML appended to its config.toml, after everything else
 * (top-level tables only, such as `[client_id_metadata_documents]` or `[fetch]`).
 */
export async function startRegistrar(bin, { extraConfig = '' } = {}) {
  if (!existsSync(bin)) {
    throw new Error(`no registrar binary at ${bin}: run \`cargo build\` in the repository, or set STATELESS_DCR_BIN`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'stateless-dcr-e2e-'));
  const run = (args, input) => execFileSync(bin, args, { cwd: dir, input, encoding: 'utf8', env: registrarEnv });
  run(['keys', 'generate', '--out', 'registrar-keys.json']);
  // What an OP is given: the client_secret group only (docs/integrations.md, jq '{client_secret}').
  const { client_secret: clientSecret } = JSON.parse(readFileSync(join(dir, 'registrar-keys.json'), 'utf8'));
  writeFileSync(join(dir, 'client-secret-keys.json'), JSON.stringify({ client_secret: clientSecret }));
  run(['statement', 'keygen', '--private', 'authority.private.jwk.json', '--jwks', 'authority.jwks.json']);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const apiToken = randomBytes(32).toString('base64url'); // resolve_api_tokens: >= 32 characters
  // The registrar serves what the example OP serves: the code flow (example/op.js).
  writeFileSync(join(dir, 'config.toml'), `
listen = "127.0.0.1:${port}"
public_url = "${url}"
keys = "registrar-keys.json"
resolve_api_tokens = ["${apiToken}"]
keys_reload_secs = 0

[policy]
response_types = ["code"]
grant_types = ["authorization_code", "refresh_token"]

[status_store]
kind = "embedded"
path = "status.redb"

# short list lifetimes, so that an offline OP sees a delete or an update within seconds
[status_lists]
ttl_secs = ${LIST_TTL_SECS}
sign_interval_secs = ${LIST_SIGN_INTERVAL_SECS}

[[trusted_issuers]]
issuer = "${AUTHORITY}"
jwks_file = "authority.jwks.json"
${extraConfig ? `\n${extraConfig}\n` : ''}`);
  const proc = start('stateless-dcr', bin, ['serve', '--config', 'config.toml'], { cwd: dir, env: registrarEnv, clearEnv: true });
  try {
    await waitFor(`${url}/.well-known/openid-configuration`, proc);
  } catch (err) {
    await proc.stop();
    throw err;
  }

  return {
    url,
    issuer: url,
    apiToken,
    dir,
    clientSecretKeysFile: join(dir, 'client-secret-keys.json'),
    proc,
    /** A software statement signed by the authority (`statement sign`). */
    statement(claims, lifetimeSecs = 3600) {
      return run([
        'statement', 'sign', '--key', 'authority.private.jwk.json', '--claims', '-',
        '--lifetime', String(lifetimeSecs),
      ], JSON.stringify({ iss: AUTHORITY, ...claims })).trim();
    },
    /** RFC 7591 §3.1: POST /register; returns the 201 body. */
    async register(body) {
      const response = await fetch(`${url}/register`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
      });
      const json = await response.json();
      if (response.status !== 201) throw new Error(`register: ${response.status} ${JSON.stringify(json)}`);
      return json;
    },
    /** RFC 7592 §2.2: PUT the client's configuration; returns the 200 body. */
    async update(registration, body) {
      const response = await fetch(registration.registration_client_uri, {
        method: 'PUT',
        headers: {
          authorization: `Bearer ${registration.registration_access_token}`,
          'content-type': 'application/json',
        },
        body: JSON.stringify({ client_id: registration.client_id, ...body }),
      });
      const json = await response.json();
      if (response.status !== 200) throw new Error(`update: ${response.status} ${JSON.stringify(json)}`);
      return json;
    },
    /** RFC 7592 §2.3: DELETE the client; returns the status (204). */
    async delete(registration) {
      const response = await fetch(registration.registration_client_uri, {
        method: 'DELETE', headers: { authorization: `Bearer ${registration.registration_access_token}` },
      });
      await response.arrayBuffer();
      return response.status;
    },
    /** Rotate the signing key (`keys rotate`) and reload it (SIGHUP); returns the new kid. */
    async rotate() {
      const before = (await (await fetch(`${url}/jwks`)).json()).keys.length;
      run(['keys', 'rotate', '--keys', 'registrar-keys.json']);
      proc.child.kill('SIGHUP');
      for (let i = 0; i < 100; i += 1) {
        const { keys } = await (await fetch(`${url}/jwks`)).json();
        if (keys.length > before) return keys[0].kid; // the active key is listed first
        await new Promise((r) => { setTimeout(r, 50); });
      }
      throw new Error(`the registrar did not reload its keys:\n${proc.output()}`);
    },
    async stop() {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
