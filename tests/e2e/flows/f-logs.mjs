// f-logs.mjs — flow f: the live log. Open #/logs, cause log lines (creating a test logs
// "test created" at info, a refused request logs "request" with its status), see them arrive;
// Pause holds new lines back until Resume; the level filter hides lines below it; search narrows.
import assert from 'node:assert/strict';
import { client } from '../lib/api.mjs';
import { openPage } from '../lib/browser.mjs';

export async function flowLogs(ctx) {
  const api = client(ctx.main.base);
  const page = await openPage(ctx.browser, ctx.main.base);
  await page.goto('/#/logs');
  await page.getByTestId('log-status').getByText('Live').waitFor();
  const log = page.getByTestId('log-lines');
  const line = (text) => log.locator('.log-line', { hasText: text });

  // A line caused now arrives.
  const first = await api.create({ name: 'log-probe', variants: { 0: 'x', 1: 'y' } });
  await line(first.model_id).waitFor();
  assert.equal(await line(first.model_id).getAttribute('data-level'), 'info');
  assert.match(await line(first.model_id).innerText(), /test created/);
  const refused = await api.call('POST', '/api/update_model/not-a-test', { updates: [{ variant_id: 0, reward: 1 }] });
  assert.equal(refused.status, 404);
  await log.locator('.log-line', { hasText: '/api/update_model/{id}' }).filter({ hasText: 'status=404' }).first().waitFor();

  // Pause: new lines wait aside; Resume shows them.
  await page.getByTestId('log-pause').click();
  assert.equal(await page.getByTestId('log-pause').innerText(), 'Resume');
  const second = await api.create({ name: 'log-probe-2', variants: { 0: 'x', 1: 'y' } });
  await page.getByTestId('log-count').getByText(/Paused: [1-9]\d* new lines waiting/).waitFor();
  await page.waitForTimeout(600);
  assert.equal(await line(second.model_id).count(), 0, 'no new line while paused');
  await page.getByTestId('log-pause').click();
  await line(second.model_id).waitFor();

  // The level filter hides lines below it; search narrows to matching lines.
  const infoLines = () => log.locator('.log-line[data-level="info"]').count();
  assert.ok((await infoLines()) >= 2);
  await page.getByLabel('Minimum level').selectOption('warn');
  await page.waitForFunction(() => !document.querySelector('[data-testid="log-lines"] .log-line[data-level="info"]'));
  assert.equal(await line(first.model_id).count(), 0, 'info lines are hidden at warn');
  await page.getByLabel('Minimum level').selectOption('debug');
  await line(first.model_id).waitFor();
  await page.getByLabel('Search').fill(second.model_id);
  await page.waitForFunction(
    (id) => [...document.querySelectorAll('[data-testid="log-lines"] .log-line')].every((el) => el.textContent.includes(id)),
    second.model_id,
  );
  assert.equal(await log.locator('.log-line').count(), 1, 'one line mentions the second probe');
  await page.getByLabel('Search').fill('');

  await api.remove(first.model_id);
  await api.remove(second.model_id);
  await log.locator('.log-line', { hasText: 'test_deleted' }).filter({ hasText: second.model_id }).waitFor();
  await ctx.shot(page, 'logs');
  assert.deepEqual(page.errors, [], 'no script errors');
  await page.context().close();
}
