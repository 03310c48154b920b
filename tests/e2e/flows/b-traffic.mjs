// b-traffic.mjs — flow b: traffic through the API (fetch_recommended_variant with a request_id,
// then update_model with that request_id and a reward; "Save money" is rewarded more) shows on
// the test page and the dashboard: decisions, rewards, per-variant counts and reward sums equal
// what was sent; the charts, rewards over time included, exist and change; the warm-up ends. The
// page's own curl, Python and JavaScript snippets are run and work.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { client } from '../lib/api.mjs';
import { openPage } from '../lib/browser.mjs';
import { VARIANTS } from './a-create.mjs';

const ROUNDS = 40;

/** Waits until the text of `locator` equals `expected` (auto-refresh), or fails. */
export async function waitForText(locator, expected, timeout = 15000) {
  const deadline = Date.now() + timeout;
  let last = '';
  while (Date.now() < deadline) {
    last = (await locator.innerText().catch(() => '')).trim();
    if (last === String(expected)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`expected ${JSON.stringify(String(expected))}, the page shows ${JSON.stringify(last)}`);
}

async function chartState(page) {
  return {
    share: Number(await page.getByTestId('share-chart').getAttribute('data-total')),
    decisions: Number(await page.getByTestId('decisions-chart').getAttribute('data-total')),
    columns: await page.getByTestId('decisions-chart').locator('g[data-total]').count(),
    rewards: Number(await page.getByTestId('rewards-chart').getAttribute('data-total')),
    rewardSum: Number(await page.getByTestId('rewards-chart').getAttribute('data-sum')),
    rewardColumns: await page.getByTestId('rewards-chart').locator('g[data-total]').count(),
    means: await page.getByTestId('interval-chart').locator('[data-mean]').evaluateAll((els) => els.map((e) => Number(e.dataset.mean))),
    rewardBars: await page.getByTestId('reward-bars').locator('[data-reward-sum]').evaluateAll((els) => els.map((e) => Number(e.dataset.rewardSum))),
  };
}

async function sendTraffic(api, id, rounds, prefix) {
  const sent = { decisions: 0, rewards: 0, perVariant: {} };
  for (const v of VARIANTS) sent.perVariant[v] = { decisions: 0, rewards: 0, sum: 0 };
  for (let i = 0; i < rounds; i++) {
    const requestId = `${prefix}-${i}`;
    const context = { device: i % 3 ? 'mobile' : 'desktop' };
    const d = await api.fetchVariant(id, requestId, context);
    assert.equal(d.request_id, requestId);
    const label = d.recommended_variant;
    const reward = label === VARIANTS[1] ? (i % 4 === 0 ? 0 : 1) : i % 4 === 0 ? 1 : 0;
    const u = await api.reward(id, requestId, reward);
    assert.equal(u.processed_updates, 1);
    assert.equal(u.redis_hits, 1, 'the decision was joined by request_id');
    sent.decisions++;
    sent.rewards++;
    sent.perVariant[label].decisions++;
    sent.perVariant[label].rewards++;
    sent.perVariant[label].sum += reward;
  }
  return sent;
}

async function snippet(page, tab) {
  await page.getByRole('tab', { name: tab }).click();
  const key = { curl: 'curl', Python: 'python', JavaScript: 'js' }[tab];
  return page.getByTestId(`snippet-${key}`).innerText();
}

export async function flowTraffic(ctx) {
  const id = ctx.state.testId;
  const api = client(ctx.main.base);
  const page = ctx.state.page || (await openPage(ctx.browser, ctx.main.base));
  await page.goto(`/#/tests/${id}`);
  await page.getByTestId('interval-chart').waitFor();

  const before = await chartState(page);
  assert.equal(before.decisions, 0, 'no decisions charted before traffic');
  assert.equal(before.columns, 0);
  assert.equal(before.rewards, 0, 'no rewards charted before traffic');
  assert.equal(before.rewardColumns, 0);
  assert.equal(await page.getByTestId('decisions').innerText(), '0');
  assert.equal(await page.getByTestId('state-badge').innerText(), 'warm-up');

  // A second test, so the dashboard shows more than one.
  const other = await api.create({ name: 'checkout-button', variants: { 0: 'Green', 1: 'Blue', 2: 'Orange' } });
  ctx.state.otherId = other.model_id;
  for (let i = 0; i < 24; i++) {
    const d = await api.fetchVariant(other.model_id, `other-${i}`);
    await api.reward(other.model_id, `other-${i}`, d.recommended_variant === 'Blue' ? 1 : i % 3 === 0 ? 1 : 0);
  }

  const sent = await sendTraffic(api, id, ROUNDS, 'e2e');

  // The page refreshes by itself: wait for the numbers, without reloading.
  await waitForText(page.getByTestId('decisions'), ROUNDS);
  await waitForText(page.getByTestId('rewards'), ROUNDS);
  const table = page.getByTestId('variant-table');
  let total = 0;
  for (const v of VARIANTS) {
    const row = table.locator(`tr[data-variant="${v}"]`);
    const want = sent.perVariant[v];
    assert.equal(await row.locator('[data-col="predictions"]').innerText(), String(want.decisions), `${v} decisions`);
    assert.equal(await row.locator('[data-col="updates"]').innerText(), String(want.rewards), `${v} rewards`);
    assert.equal(await row.locator('[data-col="reward_sum"]').innerText(), String(want.sum), `${v} reward sum`);
    total += want.sum;
  }
  assert.equal(await page.getByTestId('reward-sum').innerText(), String(total));
  assert.equal(await page.getByTestId('state-badge').innerText(), 'learning', 'the warm-up (8 rewards) is over');

  const after = await chartState(page);
  assert.equal(after.decisions, ROUNDS, 'the decisions chart counts every decision');
  assert.equal(after.share, ROUNDS);
  assert.ok(after.columns >= 1, 'the decisions chart has columns');
  assert.equal(after.rewards, ROUNDS, 'the rewards chart counts every reward');
  assert.equal(after.rewardSum, total, 'the rewards chart sums the rewards sent');
  assert.ok(after.rewardColumns >= 1, 'the rewards chart has columns');
  assert.notDeepEqual(after.means, before.means, 'the mean-reward chart moved');
  assert.deepEqual(after.rewardBars, VARIANTS.map((v) => sent.perVariant[v].sum), 'the reward bars show the reward sums');
  assert.ok(await page.getByTestId('feature-table').filter({ hasText: 'device' }).count(), 'contextual breakdown by device');
  await ctx.shot(page, 'test');
  await page.evaluate(() => window.scrollTo(0, document.getElementById('share-h').getBoundingClientRect().top + window.scrollY - 40));
  await ctx.shot(page, 'test-charts');

  // The dashboard shows the same numbers and a traffic-share bar.
  await page.goto('/#/');
  const card = page.locator(`[data-testid="test-card"][data-model-id="${id}"]`);
  await card.waitFor();
  assert.equal(await card.getByTestId('decisions').innerText(), String(ROUNDS));
  assert.equal(await card.getByTestId('rewards').innerText(), String(ROUNDS));
  assert.equal(await card.getByTestId('state-badge').innerText(), 'learning');
  assert.ok((await card.locator('.sharebar-seg').count()) >= 1, 'the share bar has segments');
  assert.equal(await page.locator('[data-testid="test-card"]').count(), 2);
  await page.getByTestId('store-health').getByText('healthy').waitFor();
  await page.getByTestId('store-health').getByText('ready', { exact: true }).waitFor();
  await ctx.shot(page, 'dashboard');

  // More traffic while the dashboard is open: it refreshes by itself.
  const more = await sendTraffic(api, id, 6, 'e2e-more');
  await waitForText(card.getByTestId('decisions'), ROUNDS + more.decisions);
  await waitForText(card.getByTestId('rewards'), ROUNDS + more.rewards);

  // At 375 px nothing is cut off: no page is wider than the screen (wide tables scroll inside).
  const mobile = await openPage(ctx.browser, ctx.main.base, { width: 375, height: 812 });
  const overflow = () => mobile.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  for (const [hash, ready] of [
    [`#/tests/${id}`, 'feature-breakdown'],
    ['#/new', 'create-form'],
    ['#/admin', 'tokens-card'],
    ['#/logs', 'log-lines'],
    ['#/', 'test-card'],
  ]) {
    await mobile.goto(`/${hash}`);
    await mobile.getByTestId(ready).first().waitFor();
    assert.ok((await overflow()) <= 0, `no horizontal scrolling at 375 px on ${hash} (overflow ${await overflow()} px)`);
  }
  await ctx.shot(mobile, 'dashboard-mobile');
  assert.deepEqual(mobile.errors, []);
  await mobile.context().close();

  // The snippets work as pasted: each makes one decision and reports one reward.
  await page.goto(`/#/tests/${id}`);
  await page.getByTestId('snippet-curl').waitFor();
  const curl = await snippet(page, 'curl');
  assert.ok(curl.includes(ctx.main.base) && curl.includes(id));
  const curlOut = execFileSync('bash', ['-c', curl], { encoding: 'utf8', timeout: 10000 });
  assert.match(curlOut, /"recommended_variant"/);
  assert.match(curlOut, /"processed_updates":\s*1/);
  let runs = 1;
  const python = await snippet(page, 'Python');
  let pyAvailable = true;
  try {
    execFileSync('python3', ['-c', 'import requests'], { stdio: 'ignore' });
  } catch {
    pyAvailable = false;
  }
  if (pyAvailable) {
    const pyOut = execFileSync('python3', ['-c', python], { encoding: 'utf8', timeout: 10000 });
    assert.match(pyOut, /'processed_updates': 1/);
    runs++;
  }
  const js = await snippet(page, 'JavaScript');
  const jsOut = execFileSync(process.execPath, ['--input-type=module', '-e', js], { encoding: 'utf8', timeout: 10000 });
  assert.match(jsOut, /processed_updates: 1/);
  runs++;
  await waitForText(page.getByTestId('decisions'), ROUNDS + more.decisions + runs);
  await waitForText(page.getByTestId('rewards'), ROUNDS + more.rewards + runs);

  assert.deepEqual(page.errors, [], 'no script errors');
}
