// g-admin.mjs — flow g: the Admin page. Turning protection on without an admin token shows the
// server's 409 detail; a new admin token's secret is shown once with a copy button; with it,
// protection goes on and the UI asks to sign in; a client token is revoked after confirmation;
// test defaults are saved; protection goes off again.
import assert from 'node:assert/strict';
import { client } from '../lib/api.mjs';
import { openPage } from '../lib/browser.mjs';

export async function flowAdmin(ctx) {
  const api = client(ctx.main.base);
  const page = await openPage(ctx.browser, ctx.main.base);
  await page.goto('/#/admin');
  const state = page.getByTestId('protection-state');
  await state.getByText('off').waitFor();
  await page.getByTestId('store-health').getByText('healthy').waitFor();

  // Protection on without any admin token: refused (409) with the server's sentence.
  await page.getByTestId('protection-switch').click();
  const refusal = page.getByTestId('protection-card').getByRole('alert');
  await refusal.waitFor();
  assert.match(await refusal.innerText(), /create an admin token first/i);
  assert.match(await refusal.innerText(), /409/);
  assert.equal(await page.getByTestId('protection-switch').getAttribute('aria-checked'), 'false');

  // A client token, then an admin token: the secret is shown once, with a copy button.
  const form = page.getByTestId('token-form');
  await form.getByLabel('Name').fill('checkout-service');
  await form.getByLabel('Scope').selectOption('client');
  await form.getByRole('button', { name: 'Create token' }).click();
  await page.getByTestId('new-token').waitFor();
  await page.getByRole('button', { name: 'I have stored it' }).click();
  await form.getByLabel('Name').fill('ops');
  await form.getByLabel('Scope').selectOption('admin');
  await form.getByLabel('Lifetime (hours)').fill('2');
  await form.getByRole('button', { name: 'Create token' }).click();
  const box = page.getByTestId('new-token');
  await box.waitFor();
  assert.match(await box.innerText(), /will not be shown again/);
  const secret = (await page.getByTestId('token-secret').innerText()).trim();
  assert.match(secret, /^sct_[A-Za-z0-9_-]{43}$/);
  await page.getByTestId('copy-token').click();
  await box.getByText('Copied').waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret);
  const table = page.getByTestId('token-table');
  await table.getByText('ops').waitFor();
  await table.getByText('checkout-service').waitFor();
  assert.ok(!(await table.innerText()).includes(secret), 'the list never shows a secret');
  await ctx.shot(page, 'admin', { fullPage: true });
  await page.getByRole('button', { name: 'I have stored it' }).click();
  assert.equal(await page.getByTestId('token-secret').count(), 0, 'the secret is gone once dismissed');

  // Now protection can go on; this browser has no token yet, so it is asked for one.
  await page.getByTestId('protection-switch').click();
  await page.getByTestId('login-panel').waitFor();
  assert.equal((await api.call('GET', '/api/models')).status, 401);
  await page.getByLabel('Access token').fill(secret);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await state.getByText('on').waitFor();

  // Revoke the client token, after the confirmation.
  const row = table.locator('tr', { hasText: 'checkout-service' });
  await row.getByRole('button', { name: /Revoke/ }).click();
  const dialog = page.getByRole('dialog');
  await dialog.waitFor();
  await dialog.getByRole('button', { name: 'Revoke', exact: true }).click();
  await dialog.waitFor({ state: 'hidden' });
  await row.getByText('revoked').waitFor();

  // Test defaults.
  const authed = client(ctx.main.base, secret);
  await page.getByLabel('Warm-up rewards (min_update_requests)').fill('12');
  await page.getByRole('button', { name: 'Save defaults' }).click();
  await page.getByTestId('config-card').getByRole('status').filter({ hasText: /\S/ }).waitFor();
  assert.equal((await authed.ok('GET', '/admin/model_config')).min_update_requests, 12);
  await page.getByLabel('Warm-up rewards (min_update_requests)').fill('10');
  const saved = page.waitForResponse((r) => r.url().endsWith('/admin/model_config') && r.request().method() === 'POST');
  await page.getByRole('button', { name: 'Save defaults' }).click();
  assert.equal((await saved).status(), 200);
  assert.equal((await authed.ok('GET', '/admin/model_config')).min_update_requests, 10);
  assert.equal(await page.getByLabel('Warm-up rewards (min_update_requests)').inputValue(), '10');

  // Protection off again.
  await page.getByTestId('protection-switch').click();
  await state.getByText('off').waitFor();
  assert.equal((await api.call('GET', '/api/models')).status, 200);
  assert.deepEqual(page.errors, [], 'no script errors');
  await page.context().close();
}
