// A real stateless-dcr server with OPEN registration (no software statement), the way an MCP
// authorization server would run it: a TOML file in a temp dir, a free loopback port, the
// development registrar keys, and a fake OP's endpoints published in discovery.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { freePort, start, waitFor } from './processes.js';

const packageDir = fileURLToPath(new URL('../..', import.meta.url));

/** The server binary: STATELESS_DCR_BIN (relative to the package) or the release build. */
export const registrarBinary = resolve(packageDir, process.env.STATELESS_DCR_BIN ?? '../../target/release/stateless-dcr');

// Resolved from the package, so the config works in any clone; it is a loopback-only dev key set.
const devKeys = resolve(packageDir, '../../keys/dev-registrar-keys.json');

// The server reads every STATELESS_DCR_* variable as a configuration option and refuses unknown
// ones, STATELESS_DCR_BIN included: it gets its configuration from the file alone.
const serverEnv = Object.fromEntries(
  Object.entries(process.env).filter(([name]) => !name.startsWith('STATELESS_DCR_')),
);

/**
 * Start the server. `extraToml` is appended at the top level (before any table), for options
 * a test needs, such as `allowed_private_use_schemes`.
 */
export async function startRegistrar({ extraToml = '' } = {}) {
  if (!existsSync(registrarBinary)) {
    throw new Error(`no server binary at ${registrarBinary}: build it, or set STATELESS_DCR_BIN`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'stateless-dcr-mcp-'));
  const port = await freePort();
  const opPort = await freePort(); // nothing listens there: the OP endpoints are only published
  const url = `http://127.0.0.1:${port}`;
  writeFileSync(join(dir, 'config.toml'), `
listen = "127.0.0.1:${port}"
public_url = "${url}"
keys = ${JSON.stringify(devKeys)}
require_software_statement = false
authorization_endpoint = "http://127.0.0.1:${opPort}/authorize"
token_endpoint = "http://127.0.0.1:${opPort}/token"
keys_reload_secs = 0
${extraToml}

[status_store]
kind = "embedded"
path = "status.redb"
`);
  const proc = start('stateless-dcr', registrarBinary, ['serve', '--config', 'config.toml'], {
    cwd: dir, env: serverEnv, clearEnv: true,
  });
  const stop = async () => {
    await proc.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(`${url}/.well-known/openid-configuration`, proc);
  } catch (err) {
    await stop();
    throw err;
  }
  return { url, opUrl: `http://127.0.0.1:${opPort}`, proc, stop };
}

/**
 * A fetch to hand the SDK as `fetchFn`: it records every request (method, URL, headers) and
 * response (status, body), so a test can assert what went over the wire, not only what the
 * SDK made of it. `override(url)` may return a Response instead of going to the network.
 */
export function recordingFetch(override = () => undefined) {
  const calls = [];
  const fetchFn = async (input, init = {}) => {
    const url = String(input instanceof Request ? input.url : input);
    const call = {
      method: init.method ?? 'GET',
      url,
      headers: Object.fromEntries(new Headers(init.headers).entries()),
      body: init.body,
    };
    calls.push(call);
    const response = override(url) ?? await fetch(input, init);
    call.status = response.status;
    call.responseBody = await response.clone().text();
    return response;
  };
  return { fetchFn, calls };
}
