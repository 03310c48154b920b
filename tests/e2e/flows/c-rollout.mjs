// c-rollout.mjs — flow c: roll out a variant from the test page; the page and the dashboard
// show "rolled out", and the API agrees (a decision comes back with is_global_rollout true and
// that variant); then clear it and both go back to learning.
import assert from 'node:assert/strict';
import { client } from '../lib/api.mjs';
import { openPage } from '../lib/browser.mjs';
import { VARIANTS } from './a-create.mjs';

export async function flowRollout(ctx) {
  const id = ctx.state.testId;
  const api = client(ctx.main.base);
  const page = ctx.state.page || (await openPage(ctx.browser, ctx.main.base));
  await page.goto(`/#/tests/${id}`);
  const badge = page.getByTestId('state-badge');
  await badge.waitFor();

  await page.getByLabel('Send everyone to').selectOption(VARIANTS[0]);
  await page.getByRole('button', { name: 'Roll out' }).click();
  await page.getByRole('button', { name: 'Clear rollout' }).waitFor();
  assert.equal(await badge.innerText(), `rolled out: ${VARIANTS[0]}`);

  for (let i = 0; i < 5; i++) {
    const d = await api.fetchVariant(id, `rollout-${i}`);
    assert.equal(d.is_global_rollout, true, 'the API decides by the rollout');
    assert.equal(d.recommended_variant, VARIANTS[0]);
  }
  const summary = (await api.models()).find((m) => m.model_id === id);
  assert.equal(summary.global_rolled_out, true);
  assert.equal(summary.global_variant, VARIANTS[0]);

  await page.goto('/#/');
  const card = page.locator(`[data-testid="test-card"][data-model-id="${id}"]`);
  await card.getByTestId('state-badge').getByText('rolled out').waitFor();

  await page.goto(`/#/tests/${id}`);
  await page.getByRole('button', { name: 'Clear rollout' }).click();
  await page.getByRole('button', { name: 'Roll out' }).waitFor();
  assert.equal(await badge.innerText(), 'learning');
  const d = await api.fetchVariant(id, 'after-clear');
  assert.equal(d.is_global_rollout, false, 'learning resumed');
  assert.equal((await api.models()).find((m) => m.model_id === id).global_rolled_out, false);

  assert.deepEqual(page.errors, [], 'no script errors');
}
