// scoutd.mjs — starts a real scoutd for the end-to-end tests on free ports with a fresh data
// directory and the built UI, waits until it is ready, and stops it with SIGTERM.
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, closeSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const running = new Set();

/** A TCP port nobody listens on right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts scoutd. Returns {base, apiBase, log(), stop()}; `base` is the UI port's origin (it
 * answers the API too). env adds variables (e.g. SCOUT_PROTECTED_API).
 */
export async function startScoutd({ binary, uiDir, env = {}, name = 'scoutd' }) {
  const dir = mkdtempSync(path.join(os.tmpdir(), `scout-e2e-${name}-`));
  const dataDir = path.join(dir, 'data');
  const logPath = path.join(dir, 'scoutd.log');
  const port = await freePort();
  let uiPort = await freePort();
  while (uiPort === port) uiPort = await freePort();
  const out = openSync(logPath, 'a');
  const child = spawn(binary, ['--host', '127.0.0.1', '--port', String(port), '--ui-port', String(uiPort), '--data-dir', dataDir], {
    env: { ...process.env, SCOUT_UI_DIR: uiDir, SCOUT_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', out, out],
  });
  closeSync(out);
  let exited = null;
  const exit = new Promise((resolve) => child.on('exit', (code, signal) => resolve((exited = { code, signal }))));
  const server = {
    name,
    base: `http://127.0.0.1:${uiPort}`,
    apiBase: `http://127.0.0.1:${port}`,
    pid: child.pid,
    log: () => {
      try {
        return readFileSync(logPath, 'utf8');
      } catch {
        return '';
      }
    },
    async stop() {
      running.delete(server);
      if (!exited) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
        await exit;
        clearTimeout(timer);
      }
      return exited;
    },
    /** Deletes the data directory and log (after stop). */
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
    kill() {
      if (!exited) child.kill('SIGKILL');
    },
  };
  running.add(server);

  const deadline = Date.now() + 15000;
  for (;;) {
    if (exited) throw new Error(`${name} exited during start-up (${JSON.stringify(exited)}):\n${server.log()}`);
    try {
      const res = await fetch(`${server.base}/readyz`);
      if (res.ok) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      await server.stop();
      throw new Error(`${name} was not ready within 15 s:\n${server.log()}`);
    }
    await sleep(100);
  }
  return server;
}

/** Kills every scoutd still running and removes its files (last resort on an unexpected exit). */
export function killAll() {
  for (const s of running) {
    s.kill();
    s.remove();
  }
  running.clear();
}
