// Child processes for the tests (copied from integrations/node-oidc-provider): free ports, start, wait until serving, stop.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** A port that was free a moment ago on 127.0.0.1 (the OS picks it). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Start a process and keep its output (shown when a test fails, through `output()`). Its
 * environment is ours with `env` over it, or `env` alone with `clearEnv`.
 * @returns {{child: import('node:child_process').ChildProcess, output: () => string, stop: () => Promise<void>}}
 */
export function start(name, command, args, { env = {}, cwd, clearEnv = false } = {}) {
  const child = spawn(command, args, {
    cwd, env: clearEnv ? env : { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk) => { output = (output + chunk).slice(-20_000); };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    name,
    child,
    output: () => output,
    alive: () => child.exitCode === null && child.signalCode === null,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Wait until `url` answers 200, or fail with the process's output. */
export async function waitFor(url, proc, { timeoutMs = 20_000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!proc.alive()) throw new Error(`${proc.name} exited:\n${proc.output()}`);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      if (response.status === 200) return;
    } catch { /* not listening yet */ }
    await sleep(100);
  }
  throw new Error(`${proc.name} did not serve ${url} within ${timeoutMs} ms:\n${proc.output()}`);
}
