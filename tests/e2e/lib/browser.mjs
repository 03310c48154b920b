// browser.mjs — headless Chromium through playwright-core (installed by `npm ci` in ui/),
// using the system's /usr/bin/chromium (or CHROMIUM); pages fail their flow on any uncaught
// script error.
import { createRequire } from 'node:module';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';

export async function launch(uiDir) {
  const require = createRequire(path.join(uiDir, '..', 'package.json'));
  let playwright;
  try {
    playwright = require('playwright-core');
  } catch {
    throw new Error('playwright-core is missing: run `npm ci` in ui/');
  }
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
  if (!existsSync(executablePath)) throw new Error(`${executablePath} not found: apt-get install -y --no-install-recommends chromium (or set CHROMIUM)`);
  return playwright.chromium.launch({
    executablePath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

/** A fresh context and page at `base`; page.errors collects uncaught script errors. */
export async function openPage(browser, base, { width = 1280, height = 800 } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, baseURL: base });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  const page = await context.newPage();
  page.setDefaultTimeout(10000);
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  return page;
}

/** Saves a PNG under docs/screenshots when enabled (the runner's --screenshots). */
export function screenshotter(dir, enabled) {
  return async (page, name, options = {}) => {
    if (!enabled) return;
    mkdirSync(dir, { recursive: true });
    await page.evaluate(() => document.activeElement?.blur?.());
    await page.screenshot({ path: path.join(dir, `${name}.png`), ...options });
  };
}
