// The federation authority's side: Status List Tokens built with @sd-jwt/jwt-status-list,
// signed with jose, and served over HTTPS by a Node `https` server whose self-signed
// certificate the `openssl` command-line tool makes at test time.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { StatusList, createHeaderAndPayload } from '@sd-jwt/jwt-status-list';
import { SignJWT } from 'jose';

/** The `ttl` of the authority's lists (seconds): how long a verifier may keep one. */
export const LIST_TTL_SECS = 1;

/**
 * A Status List Token (draft-ietf-oauth-status-list §5.1) of `size` one-bit entries, those at
 * `invalid` set to 1 (INVALID), signed ES256 with `key` (a jose key; `kid` in the header).
 */
export async function signList({ uri, key, kid, size = 64, invalid = [] }) {
  const list = new StatusList(new Array(size).fill(0), 1);
  for (const idx of invalid) list.setStatus(idx, 1);
  const iat = Math.floor(Date.now() / 1000);
  const { header, payload } = createHeaderAndPayload(
    list,
    { sub: uri, iat, exp: iat + 3600, ttl: LIST_TTL_SECS },
    { alg: 'ES256', typ: 'statuslist+jwt', kid },
  );
  return new SignJWT(payload).setProtectedHeader(header).sign(key);
}

/** A self-signed certificate for `localhost` (and 127.0.0.1, ::1), made by openssl in `dir`. */
function selfSignedCertificate(dir) {
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1',
      // an end-entity certificate (webpki refuses a CA certificate as the server's)
      '-addext', 'basicConstraints=critical,CA:FALSE',
      '-addext', 'keyUsage=critical,digitalSignature',
      '-addext', 'extendedKeyUsage=serverAuth',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    throw new Error(`openssl could not make the test certificate (is the openssl command installed?): ${err.stderr ?? err.message}`);
  }
  return { keyFile, certFile };
}

function listen(server, port, host) {
  return new Promise((resolve, reject) => {
    const onError = (err) => { server.off('listening', onListening); reject(err); };
    const onListening = () => { server.off('error', onError); resolve(server.address().port); };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}

const close = (server) => new Promise((resolve) => {
  if (!server.listening) { resolve(); return; }
  server.close(() => resolve());
  server.closeAllConnections();
});

/**
 * An HTTPS server for `https://localhost:PORT/...`, on 127.0.0.1 and, where the machine has
 * IPv6, on ::1 with the same port (whichever address the registrar's resolver gives first).
 * `serve(path, body)` sets what a path answers (200, application/statuslist+jwt); anything
 * else is 404. `requests(path)` counts the GETs of a path.
 */
export async function startListServer() {
  const dir = mkdtempSync(join(tmpdir(), 'stateless-dcr-tsl-authority-'));
  const servers = [];
  try {
    const { keyFile, certFile } = selfSignedCertificate(dir);
    const tls = { key: readFileSync(keyFile), cert: readFileSync(certFile) };
    const routes = new Map();
    const counts = new Map();
    const handler = (request, response) => {
      const { pathname } = new URL(request.url, 'https://localhost');
      counts.set(pathname, (counts.get(pathname) ?? 0) + 1);
      const body = routes.get(pathname);
      if (request.method !== 'GET' || body === undefined) {
        response.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
        return;
      }
      response.writeHead(200, { 'content-type': 'application/statuslist+jwt' }).end(body);
    };
    let port;
    for (let attempt = 0; port === undefined; attempt += 1) {
      const v4 = createServer(tls, handler);
      servers.push(v4);
      const candidate = await listen(v4, 0, '127.0.0.1');
      const v6 = createServer(tls, handler);
      try {
        await listen(v6, candidate, '::1');
        servers.push(v6);
        port = candidate;
      } catch (err) {
        if (err.code === 'EADDRNOTAVAIL' || err.code === 'EAFNOSUPPORT') {
          port = candidate; // no IPv6 loopback here: localhost is 127.0.0.1 only
        } else if (err.code === 'EADDRINUSE' && attempt < 5) {
          await close(v4); // someone else holds [::1]:candidate; try another port
          servers.pop();
        } else {
          throw err;
        }
      }
    }
    const base = `https://localhost:${port}`;
    return {
      base,
      certFile,
      serve(path, body) { routes.set(path, body); },
      requests: (path) => counts.get(path) ?? 0,
      async stop() {
        await Promise.all(servers.map(close));
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await Promise.all(servers.map(close));
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
