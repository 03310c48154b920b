// a-create.mjs — flow a: create a test in the UI. Fills the form, adds a third variant and
// removes it, opens Advanced (epsilon appears only for egreedy; min_updates is sent), sees the
// server's 400 detail inline for duplicate labels, then creates the test and lands on its page.
import assert from 'node:assert/strict';
import { client } from '../lib/api.mjs';
import { openPage } from '../lib/browser.mjs';

export const TEST_NAME = 'homepage-headline';
export const VARIANTS = ['Save time', 'Save money'];

export async function flowCreate(ctx) {
  const page = await openPage(ctx.browser, ctx.main.base);
  ctx.state.page = page;
  await page.goto('/#/new');
  await page.getByRole('heading', { name: 'New test' }).waitFor();

  await page.getByLabel('Name').fill(TEST_NAME);
  const inputs = page.getByTestId('variant-input');
  assert.equal(await inputs.count(), 2, 'the form starts with two variants');
  assert.ok(await page.getByRole('button', { name: /Remove variant 1/ }).isDisabled(), 'two variants cannot be reduced further');
  await page.getByLabel('Variant 1', { exact: true }).fill(VARIANTS[0]);
  await page.getByLabel('Variant 2', { exact: true }).fill(VARIANTS[1]);

  await page.getByRole('button', { name: 'Add variant' }).click();
  assert.equal(await inputs.count(), 3, 'Add variant adds a row');
  await page.waitForFunction(() => document.activeElement === document.querySelectorAll('[data-testid="variant-input"]')[2]); // focus moved to it
  await page.getByLabel('Variant 3', { exact: true }).fill('Save nothing');

  // Advanced is collapsed by default; epsilon only shows for egreedy.
  const advanced = page.locator('details.advanced');
  assert.equal(await advanced.getAttribute('open'), null, 'Advanced starts collapsed');
  assert.equal(await page.getByLabel('Policy').isVisible(), false);
  await page.getByText('Advanced', { exact: true }).click();
  await page.getByLabel('Policy').waitFor();
  assert.equal(await page.getByLabel('Epsilon').count(), 0, 'no epsilon field for auto');
  await page.getByLabel('Policy').selectOption('egreedy');
  await page.getByLabel('Epsilon').waitFor();
  await page.getByLabel('Features').fill('device, country');
  await page.getByLabel('Warm-up rewards (min_updates)').fill('8');
  await ctx.shot(page, 'create', { fullPage: true });
  await page.getByLabel('Policy').selectOption('auto');
  assert.equal(await page.getByLabel('Epsilon').count(), 0);
  await page.getByLabel('Features').fill('');

  await page.getByRole('button', { name: 'Remove variant 3 (Save nothing)' }).click();
  assert.equal(await inputs.count(), 2, 'Remove deletes the row');
  assert.deepEqual(await inputs.evaluateAll((els) => els.map((e) => e.value)), VARIANTS);

  // A duplicate label first: the server refuses it and its detail shows next to the form.
  await page.getByLabel('Variant 2', { exact: true }).fill(VARIANTS[0]);
  await page.getByRole('button', { name: 'Create test' }).click();
  const error = page.getByTestId('create-error').getByRole('alert');
  await error.waitFor();
  assert.match(await error.innerText(), /duplicate variant label/i, 'the server detail is shown');
  assert.match(page.url(), /#\/new$/, 'a refused test stays on the form');

  await page.getByLabel('Variant 2', { exact: true }).fill(VARIANTS[1]);
  await page.getByLabel('Variant 2', { exact: true }).press('Enter'); // the keyboard submits too
  await page.waitForURL(/#\/tests\/[0-9a-f-]{36}$/);
  const id = decodeURIComponent(page.url().split('/').pop());
  await page.getByTestId('test-title').getByText(TEST_NAME).waitFor();
  assert.equal(await page.getByTestId('test-id').innerText(), id);
  assert.equal(await page.getByTestId('state-badge').innerText(), 'warm-up');
  await page.getByText('warm-up 8 rewards').waitFor();

  const api = client(ctx.main.base);
  const summary = (await api.models()).find((m) => m.model_id === id);
  assert.ok(summary, 'the API lists the new test');
  assert.deepEqual(summary.variants, VARIANTS);
  assert.equal(summary.min_updates, 8, 'min_updates from Advanced reached the server');
  assert.equal(summary.policy, 'auto');

  // Copy the id: the clipboard holds it and a visible "Copied" confirms.
  await page.getByTestId('copy-id').click();
  await page.locator('.copy-status', { hasText: 'Copied' }).first().waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), id);

  assert.deepEqual(page.errors, [], 'no script errors');
  ctx.state.testId = id;
}
