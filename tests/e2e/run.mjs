#!/usr/bin/env node
// run.mjs — end-to-end tests of the Scout web UI: a real scoutd (SCOUTD, default build/scoutd)
// serving ui/dist, driven in headless Chromium by playwright-core. Prints one line per flow and
// exits non-zero when any flow fails. `--screenshots` also saves docs/screenshots/*.png.
//
//   cd ui && npm ci && npm run build && cd .. && node tests/e2e/run.mjs [--screenshots] [--only a,b]
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch, screenshotter } from './lib/browser.mjs';
import { killAll, startScoutd } from './lib/scoutd.mjs';
import { flowCreate } from './flows/a-create.mjs';
import { flowTraffic } from './flows/b-traffic.mjs';
import { flowRollout } from './flows/c-rollout.mjs';
import { flowDelete } from './flows/d-delete.mjs';
import { flowProtected } from './flows/e-protected.mjs';
import { flowLogs } from './flows/f-logs.mjs';
import { flowAdmin } from './flows/g-admin.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const args = process.argv.slice(2);
const screenshots = args.includes('--screenshots');
const onlyArg = args.find((a) => a.startsWith('--only'));
let only = onlyArg ? (onlyArg.includes('=') ? onlyArg.split('=')[1] : args[args.indexOf(onlyArg) + 1]).split(',') : null;

const binary = path.resolve(root, process.env.SCOUTD || 'build/scoutd');
const uiDir = path.join(root, 'ui', 'dist');

const FLOWS = [
  { key: 'a', title: 'create a test in the UI', run: flowCreate },
  { key: 'b', title: 'traffic through the API shows on the test page and the dashboard', run: flowTraffic, needs: ['a'] },
  { key: 'c', title: 'roll out a variant, then clear it', run: flowRollout, needs: ['a'] },
  { key: 'd', title: 'delete with confirmation', run: flowDelete, needs: ['a'] },
  { key: 'e', title: 'protected mode: sign-in, wrong token, client-scope 403', run: flowProtected },
  { key: 'f', title: 'live log: lines arrive, pause, level filter, search', run: flowLogs },
  { key: 'g', title: 'admin: 409 without admin token, tokens shown once, revoke, defaults', run: flowAdmin },
];

// --only b also runs what b needs (a).
if (only) only = FLOWS.filter((f) => only.includes(f.key) || FLOWS.some((g) => only.includes(g.key) && g.needs?.includes(f.key))).map((f) => f.key);

function fail(message) {
  console.error(message);
  process.exit(2);
}

if (!existsSync(binary)) fail(`scoutd not found at ${binary}: run \`make\` in the repository root, or set SCOUTD`);
if (!existsSync(path.join(uiDir, 'index.html'))) fail(`${uiDir}/index.html is missing: run \`npm ci && npm run build\` in ui/`);

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    killAll();
    process.exit(130);
  });
}
process.on('exit', killAll);

const servers = [];
let browser = null;
let failures = 0;
const started = Date.now();
try {
  const main = await startScoutd({ binary, uiDir, name: 'main' });
  servers.push(main);
  browser = await launch(uiDir);
  const ctx = {
    root,
    binary,
    uiDir,
    browser,
    main,
    startScoutd: async (opts) => {
      const s = await startScoutd({ binary, uiDir, ...opts });
      servers.push(s);
      return s;
    },
    shot: screenshotter(path.join(root, 'docs', 'screenshots'), screenshots),
    state: {},
  };
  const passed = new Set();
  for (const flow of FLOWS) {
    if (only && !only.includes(flow.key)) continue;
    const label = `${flow.key}. ${flow.title}`;
    const missing = (flow.needs || []).filter((k) => !passed.has(k));
    if (missing.length) {
      console.log(`SKIP ${label} (needs ${missing.join(', ')})`);
      failures++;
      continue;
    }
    const t0 = Date.now();
    try {
      await flow.run(ctx);
      passed.add(flow.key);
      console.log(`ok   ${label} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    } catch (e) {
      failures++;
      console.log(`FAIL ${label} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
      console.error(`     ${String(e?.stack || e).split('\n').join('\n     ')}`);
      for (const s of servers) {
        const tail = s.log().trim().split('\n').slice(-15).join('\n       ');
        console.error(`     last lines of ${s.name}'s log:\n       ${tail}`);
      }
    }
  }
} catch (e) {
  failures++;
  console.log(`FAIL setup: ${e?.message || e}`);
} finally {
  await browser?.close().catch(() => {});
  for (const s of servers) {
    const exit = await s.stop();
    if (exit && exit.code !== 0 && exit.signal !== 'SIGTERM') {
      failures++;
      console.log(`FAIL ${s.name} did not exit cleanly on SIGTERM: ${JSON.stringify(exit)}`);
    }
    s.remove();
  }
}
if (screenshots && failures === 0) console.log(`screenshots saved in ${path.join(root, 'docs', 'screenshots')}`);
console.log(`${failures ? 'FAILED' : 'passed'} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
process.exit(failures ? 1 : 0);
