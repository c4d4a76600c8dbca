// The example OP (example/op.js) as a process, configured for one mode.
import { fileURLToPath } from 'node:url';

import { freePort, start, waitFor } from './processes.js';

const example = fileURLToPath(new URL('../../example/op.js', import.meta.url));

export async function startOp(registrar, mode, env = {}) {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  // configured by these variables only, whatever OP_* the calling shell has
  const inherited = Object.entries(process.env).filter(([name]) => !name.startsWith('OP_'));
  const proc = start(`example OP (${mode})`, process.execPath, [example], {
    clearEnv: true,
    env: {
      ...Object.fromEntries(inherited),
      OP_PORT: String(port),
      OP_REGISTRAR_URL: registrar.url,
      OP_MODE: mode,
      OP_CLIENT_SECRET_KEYS: registrar.clientSecretKeysFile,
      OP_RESOLVE_TOKEN: registrar.apiToken,
      ...env,
    },
  });
  try {
    await waitFor(`${issuer}/.well-known/openid-configuration`, proc);
  } catch (err) {
    await proc.stop();
    throw err;
  }
  return { issuer, mode, proc, stop: () => proc.stop() };
}
