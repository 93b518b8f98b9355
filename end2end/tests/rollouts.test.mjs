// Rollouts in the portal: the demo fleet (100 simulated hosts, judged by the rollback rules when
// the server started) rolled acme-counter 1.1.0 back after an error spike and is rolling
// acme-clock 1.1.0 out. A platform user reads why the rollback happened — the rule, both
// cohorts' numbers, the fix — in the charts and the table, pauses the rollout in flight with a
// reason (a plain form, no JavaScript), and looks at the fleet.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, launch, signIn, assertAccessible } from './helpers.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

async function openRelease(page, label) {
  await page.goto(`${BASE}/releases`);
  await page.getByRole('link', { name: label }).click();
  await page.waitForURL(/\/releases\/[0-9a-f-]{36}$/);
  await page.getByRole('heading', { name: `Release of ${label}` }).waitFor();
}

test('a platform user reads why a rollout was rolled back, in charts and a table', async () => {
  const page = await (await browser.newContext()).newPage();
  await signIn(page, 'platform');
  await openRelease(page, 'acme-counter 1.1.0');
  const rollout = page.getByRole('region', { name: 'Rollout' });
  await rollout.waitFor();
  assert.match(await rollout.textContent(), /Rolled back/);
  const why = rollout.getByRole('note');
  const text = await why.textContent();
  assert.match(text, /Why it was rolled back/);
  assert.match(text, /error_rate_regression/);
  // Both cohorts' numbers, and the fix.
  assert.match(text, /version 1\.1\.0 fails \d+ in 10,000 calls .* version 1\.0\.0 fails \d+ in 10,000/s);
  assert.match(text, /Fix: find what fails in 1\.1\.0/);
  // The charts are images with a name and a description; the table holds every number.
  for (const name of ['Error rate', 'Latency, 95th percentile', 'Crash rate', 'Hosts reporting']) {
    assert.equal(await rollout.getByRole('img', { name: new RegExp(`^${name}`) }).count(), 1, name);
  }
  const table = rollout.getByRole('table', { name: 'Each judged interval, newest first' });
  assert.match(await table.locator('tbody tr').first().textContent(), /deny → roll back.*error_rate_regression/s);
  // The only control left is a retry; the release says why it ended.
  assert.equal(await rollout.getByRole('button', { name: 'Retry the rollout' }).count(), 1);
  assert.match(await page.locator('dl.facts').first().textContent(), /rolled back at step \d \(\d+ %\) by the rollback rules: error_rate_regression/);
  await assertAccessible(page, 'a rolled-back release');
});

test('a platform user pauses a rollout in flight without JavaScript and sees why it waits', async () => {
  const page = await (await browser.newContext({ javaScriptEnabled: false })).newPage();
  await page.goto(`${BASE}/login`);
  await page.getByLabel('Username').fill('platform');
  await page.getByLabel('Password').fill('stellar-demo');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${BASE}/`);
  await openRelease(page, 'acme-clock 1.1.0');
  const rollout = page.getByRole('region', { name: 'Rollout' });
  assert.match(await rollout.textContent(), /Rolling out step 2 of 3, 50 % of hosts/);
  // The rollout's own form (the page's abort form has a "Reason" field too).
  await rollout.getByLabel('Reason').fill('checking the hosts in ap-south first');
  await rollout.getByRole('button', { name: 'Pause' }).click();
  await page.waitForURL(/\?notice=/);
  await page.getByRole('status').filter({ hasText: 'Done: pause' }).waitFor();
  const text = await page.getByRole('region', { name: 'Rollout' }).textContent();
  assert.match(text, /Paused/);
  assert.match(text, /paused by platform: checking the hosts in ap-south first/);
  assert.equal(await page.getByRole('region', { name: 'Rollout' }).getByRole('button', { name: 'Resume' }).count(), 1);
  // axe-core runs in the page and needs JavaScript: the same page, in a browser that has it.
  const seen = await (await browser.newContext()).newPage();
  await signIn(seen, 'platform');
  await seen.goto(page.url());
  await seen.getByRole('region', { name: 'Rollout' }).getByRole('button', { name: 'Resume' }).waitFor();
  await assertAccessible(seen, 'a paused rollout');
});

test('the fleet page shows the hosts by product version and region; partners have none', async () => {
  const page = await (await browser.newContext()).newPage();
  await signIn(page, 'platform');
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Fleet' }).click();
  await page.getByRole('heading', { name: 'Fleet' }).waitFor();
  assert.match(await page.locator('dl.facts').textContent(), /Hosts\s*100/);
  assert.match(await page.getByRole('table', { name: 'Hosts by region' }).textContent(), /ap-south/);
  await assertAccessible(page, 'the fleet page');
  const partner = await (await browser.newContext()).newPage();
  await signIn(partner, 'partner-acme');
  assert.equal(await partner.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Fleet' }).count(), 0);
  const res = await partner.goto(`${BASE}/fleet`);
  assert.equal(res.status(), 403);
});
