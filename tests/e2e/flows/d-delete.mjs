// d-delete.mjs — flow d: delete the test from its page. The dialog's Cancel keeps it; Delete
// removes it, the browser is back on the dashboard, the card is gone (the other test stays) and
// the API answers 404 for it.
import assert from 'node:assert/strict';
import { client } from '../lib/api.mjs';
import { openPage } from '../lib/browser.mjs';

export async function flowDelete(ctx) {
  const id = ctx.state.testId;
  const api = client(ctx.main.base);
  const page = ctx.state.page || (await openPage(ctx.browser, ctx.main.base));
  await page.goto(`/#/tests/${id}`);

  const dialog = page.getByRole('dialog');
  await page.getByRole('button', { name: 'Delete test…' }).click();
  await dialog.waitFor();
  assert.match(await dialog.innerText(), /cannot be undone/);
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Cancel', 'the safe choice has the focus');
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await dialog.waitFor({ state: 'hidden' });
  assert.equal((await api.call('GET', `/api/model_details/${id}`)).status, 200, 'Cancel keeps the test');

  // Escape cancels too.
  await page.getByRole('button', { name: 'Delete test…' }).click();
  await dialog.waitFor();
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'hidden' });

  await page.getByRole('button', { name: 'Delete test…' }).click();
  await dialog.getByRole('button', { name: 'Delete', exact: true }).click();
  await page.waitForURL(/#\/$/);
  await page.getByRole('heading', { name: 'Tests', exact: true }).waitFor();
  const cards = page.locator('[data-testid="test-card"]');
  await page.locator(`[data-testid="test-card"][data-model-id="${ctx.state.otherId}"]`).waitFor();
  assert.equal(await page.locator(`[data-testid="test-card"][data-model-id="${id}"]`).count(), 0, 'the card is gone');
  assert.equal(await cards.count(), 1);
  assert.equal((await api.call('GET', `/api/model_details/${id}`)).status, 404);
  assert.ok(!(await api.models()).some((m) => m.model_id === id));

  // Its page now says so instead of showing stale data.
  await page.goto(`/#/tests/${id}`);
  await page.getByText('This test does not exist').waitFor();
  assert.deepEqual(page.errors, [], 'no script errors');
  await page.context().close(); // the later flows use pages of their own
  ctx.state.page = null;
}
