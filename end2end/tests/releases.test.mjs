// Releases in the portal: the reviewer sees what waits in the navigation badge, opens the
// approvals inbox, reads the fast-review package of a version that added a permission, and
// approves it with JavaScript turned off (the form is a plain POST); the badge count drops;
// a partner of another tenant gets the not-found page for acme's release.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, launch, signIn, assertAccessible } from './helpers.mjs';

let browser;
let releaseUrl;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const nav = (page) => page.getByRole('navigation', { name: 'Main' });

test('the reviewer reads the fast-review package from the inbox and approves without JavaScript', async () => {
  // No JavaScript at all: reading, the badge and the decision form work as plain HTML.
  const page = await (await browser.newContext({ javaScriptEnabled: false })).newPage();
  await page.goto(`${BASE}/login`);
  await page.getByLabel('Username').fill('reviewer');
  await page.getByLabel('Password').fill('stellar-demo');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${BASE}/`);
  const badge = nav(page).getByTestId('inbox-count');
  assert.equal((await badge.textContent()).trim(), '1', 'one release waits for the reviewer');
  await nav(page).getByRole('link', { name: /Approvals/ }).click();
  await page.getByRole('heading', { name: 'Approvals' }).waitFor();
  await assertAccessible(page, 'approvals inbox');
  await page.getByRole('link', { name: 'acme-hello 1.0.1' }).click();
  await page.waitForURL(/\/releases\/[0-9a-f-]{36}$/);
  releaseUrl = page.url();
  await page.getByRole('heading', { name: 'Release of acme-hello 1.0.1' }).waitFor();
  // The package: compared with the GA version, the new permission, the risk traced to it.
  const pkg = page.getByRole('region', { name: 'Fast-review package' });
  await pkg.waitFor();
  assert.match(await pkg.textContent(), /Compared with 1\.0\.0, the last GA version/);
  assert.match(await pkg.locator('dt:has-text("Permissions added") + dd').textContent(), /random/);
  assert.match(await pkg.locator('ul.risk').textContent(), /asks for a new permission `random`.*fact: permissions\.added/s);
  // The timeline: judged, review waiting, the rest pending.
  const stages = page.getByRole('list', { name: 'Stages' });
  assert.match(await stages.textContent(), /review.*waiting/s);
  await assertAccessible(page, 'release page');
  await page.getByLabel('Reason').fill('the new permission is needed for the shuffle feature');
  await page.getByRole('button', { name: 'Approve' }).click();
  await page.waitForURL(/\/releases\/[0-9a-f-]{36}\?notice=/);
  await page.getByRole('status').filter({ hasText: 'Approved' }).waitFor();
  // The badge count drops.
  assert.equal(await nav(page).getByTestId('inbox-count').count(), 0, 'nothing waits any more');
  // The engine signs and releases it within moments.
  for (let i = 0; i < 40; i++) {
    if (/GA/.test(await page.locator('dl.facts').first().textContent())) break;
    await page.waitForTimeout(250);
    await page.goto(releaseUrl);
  }
  assert.match(await page.locator('dl.facts').first().textContent(), /GA/);
  assert.match(await stages.textContent(), /ga.*succeeded/s);
});

test('a partner of another tenant gets the not-found page for acme\'s release', async () => {
  assert.ok(releaseUrl, 'the first test found the release');
  const page = await (await browser.newContext()).newPage();
  await signIn(page, 'partner-globex');
  const res = await page.goto(releaseUrl);
  assert.equal(res.status(), 404);
  await page.getByRole('heading', { name: 'Not found' }).waitFor();
  // And the release list shows none of acme's.
  await page.goto(`${BASE}/releases`);
  await page.getByRole('heading', { name: 'Releases' }).waitFor();
  assert.equal(await page.getByRole('link', { name: /acme-hello/ }).count(), 0);
  await assertAccessible(page, 'releases list');
});

test('the calendar shows the year-end freeze and the week\'s releases', async () => {
  const page = await (await browser.newContext()).newPage();
  await signIn(page, 'platform');
  await page.goto(`${BASE}/calendar`);
  await page.getByRole('heading', { name: 'Release calendar' }).waitFor();
  await page.getByRole('cell', { name: 'year-end freeze' }).waitFor();
  await assertAccessible(page, 'calendar');
});
