// Where client ID metadata documents live for the test: a Node `https` server on 127.0.0.1 with
// a self-signed certificate that the `openssl` command-line tool makes at test time (as
// ../../../status-list-interop/test/helpers/authority.js does), serving JSON documents from a
// route map and counting the requests of each path.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A self-signed end-entity certificate for 127.0.0.1 (and localhost), made by openssl in `dir`. */
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

/**
 * An HTTPS server for `https://127.0.0.1:PORT/...`. `serve(path, document, {status, headers})`
 * sets what a path answers (200 and the document as JSON by default); any other path is 404.
 * `requests(path)` counts the requests of a path, answered or not. `certFile` is the PEM
 * certificate to trust.
 */
export async function startDocumentServer() {
  const dir = mkdtempSync(join(tmpdir(), 'stateless-dcr-cimd-documents-'));
  try {
    const { keyFile, certFile } = selfSignedCertificate(dir);
    const routes = new Map(); // path -> { status, headers, body }
    const counts = new Map(); // path -> requests
    const server = createServer({ key: readFileSync(keyFile), cert: readFileSync(certFile) }, (request, response) => {
      const { pathname } = new URL(request.url, 'https://127.0.0.1');
      counts.set(pathname, (counts.get(pathname) ?? 0) + 1);
      const route = routes.get(pathname);
      if (request.method !== 'GET' || route === undefined) {
        response.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
        return;
      }
      response.writeHead(route.status, { 'content-type': 'application/json', ...route.headers }).end(route.body);
    });
    await new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => { server.off('error', reject); resolve(); });
    });
    const base = `https://127.0.0.1:${server.address().port}`;
    return {
      base,
      certFile,
      /** The URL of `path` here. */
      url: (path) => `${base}${path}`,
      serve(path, document, { status = 200, headers = {} } = {}) {
        routes.set(path, { status, headers, body: JSON.stringify(document) });
      },
      requests: (path) => counts.get(path) ?? 0,
      async stop() {
        await new Promise((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
