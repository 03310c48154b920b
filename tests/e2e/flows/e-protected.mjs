// e-protected.mjs — flow e: a second scoutd with SCOUT_PROTECTED_API=true and a bootstrap admin
// token. The UI shows the sign-in panel; a wrong token is refused with a visible message; the
// right one shows the dashboard and is sent on every call (sessionStorage); the page's snippets
// send $SCOUT_TOKEN and work with a client token; sign-out clears the token;
// a client-scope token gets visible 403 explanations on the dashboard, Admin and Logs pages.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { client } from '../lib/api.mjs';
import { openPage } from '../lib/browser.mjs';

const token40 = () => randomBytes(30).toString('base64url').slice(0, 40);

async function missingTokenFailures(base) {
  const text = await (await fetch(`${base}/metrics`)).text();
  return Number(/^scout_auth_failures_total\{reason="missing"\} (\d+)/m.exec(text)?.[1]);
}

async function signIn(page, token) {
  await page.getByLabel('Access token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

export async function flowProtected(ctx) {
  const adminToken = token40();
  assert.equal(adminToken.length, 40);
  const server = await ctx.startScoutd({ name: 'protected', env: { SCOUT_PROTECTED_API: 'true', SCOUT_AUTH_TOKEN: adminToken } });
  try {
    const anon = client(server.base);
    assert.equal((await anon.call('GET', '/api/models')).status, 401, 'the API is protected');
    const admin = client(server.base, adminToken);
    const test = await admin.create({ name: 'pricing-page', variants: { 0: 'Monthly first', 1: 'Yearly first' } });
    const created = await admin.ok('POST', '/admin/generate_token', { name: 'c', scope: 'client' });
    assert.equal(created.scope, 'client');

    const page = await openPage(ctx.browser, server.base);
    await page.goto('/#/');
    const panel = page.getByTestId('login-panel');
    await panel.waitFor();
    assert.equal(await page.getByRole('navigation', { name: 'Main' }).count(), 0, 'no navigation behind the sign-in panel');
    await ctx.shot(page, 'login');
    // Refused requests count toward the server's per-address limit: the UI spends one to learn
    // that it needs a token (the other one here is the check above).
    await page.waitForTimeout(300);
    assert.equal(await missingTokenFailures(server.base), 2, 'one refused request before the sign-in panel');

    await signIn(page, `wrong-${token40().slice(6)}`);
    const error = page.getByTestId('login-error');
    await error.waitFor();
    assert.match(await error.innerText(), /refused/i);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('scout.token')), null, 'a refused token is not kept');

    await signIn(page, adminToken);
    await panel.waitFor({ state: 'hidden' });
    await page.locator('[data-testid="test-card"]', { hasText: 'pricing-page' }).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('scout.token')), adminToken, 'kept in sessionStorage');
    await page.getByRole('button', { name: 'Sign out' }).waitFor();

    // Signed in, the snippets send a bearer token from $SCOUT_TOKEN; they work with a client token.
    await page.goto(`/#/tests/${test.model_id}`);
    const env = { ...process.env, SCOUT_TOKEN: created.token };
    const curl = await page.getByTestId('snippet-curl').innerText();
    assert.match(curl, /Authorization: Bearer \$SCOUT_TOKEN/);
    assert.match(execFileSync('bash', ['-c', curl], { encoding: 'utf8', env, timeout: 10000 }), /"processed_updates":\s*1/);
    await page.getByRole('tab', { name: 'JavaScript' }).click();
    const js = await page.getByTestId('snippet-js').innerText();
    assert.match(execFileSync(process.execPath, ['--input-type=module', '-e', js], { encoding: 'utf8', env, timeout: 10000 }), /processed_updates: 1/);
    await page.goto('/#/');

    // Every API call carries the token (the live log stream included).
    const seen = [];
    page.on('request', (r) => {
      const u = new URL(r.url());
      if (/^\/(api|admin|logs)\//.test(u.pathname)) seen.push({ path: u.pathname, auth: r.headers().authorization });
    });
    await page.goto('/#/admin');
    await page.getByTestId('protection-state').getByText('on').waitFor();
    await page.goto('/#/logs');
    await page.getByTestId('log-status').getByText('Live').waitFor();
    assert.ok(seen.some((r) => r.path === '/logs/stream'), 'the log stream was requested');
    assert.ok(seen.length >= 3);
    for (const r of seen) assert.equal(r.auth, `Bearer ${adminToken}`, `${r.path} carries the token`);

    // Sign out: the token is forgotten and the panel comes back.
    await page.goto('/#/');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await panel.waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('scout.token')), null, 'sign-out clears sessionStorage');

    // A client-scope token: valid, but only for decisions and rewards.
    await signIn(page, created.token);
    await panel.waitFor({ state: 'hidden' });
    const forbidden = page.getByTestId('forbidden').first();
    await forbidden.waitFor();
    assert.match(await forbidden.innerText(), /scope does not allow listing tests/);
    // A 403 cannot change by asking again: the page stops polling (the dashboard refreshes every 5 s).
    let asked = 0;
    const count = (r) => new URL(r.url()).pathname === '/api/models' && asked++;
    page.on('request', count);
    await page.waitForTimeout(5600);
    page.off('request', count);
    assert.equal(asked, 0, 'no polling after a 403');

    await page.getByRole('link', { name: 'Admin' }).click();
    await page.getByRole('heading', { name: 'Admin' }).waitFor();
    await forbidden.waitFor();
    const text = await forbidden.innerText();
    assert.match(text, /scope does not allow administration/);
    assert.match(text, /403/);
    assert.match(text, /GET \/admin\/get_protection/, "the server's detail is shown");
    assert.equal(await page.getByTestId('protection-card').count(), 0, 'no admin controls for a client token');

    await page.getByRole('link', { name: 'Logs' }).click();
    await page.getByTestId('forbidden').getByText(/reading the live log/).waitFor();

    // "Sign in with another token" goes back to the panel.
    await page.getByRole('button', { name: 'Sign in with another token' }).click();
    await panel.waitFor();
    await signIn(page, adminToken);
    await page.getByRole('heading', { name: 'Live log' }).waitFor();
    await page.getByTestId('log-status').getByText('Live').waitFor();

    assert.deepEqual(page.errors, [], 'no script errors');
    await page.context().close();
  } finally {
    await server.stop();
  }
}
