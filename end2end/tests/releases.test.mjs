// Releases in the portal: the reviewer sees what waits in the navigation badge, opens the
// approvals inbox, reads the fast-review package of a version that added a permission, and
// approves it with JavaScript turned off (the form is a plain POST); the badge count drops;
// a partner of another tenant gets the not-found page for acme's release.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, launch, signIn, assertAccessible, reloadUntil } from './helpers.mjs';

let browser;
let releaseUrl;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const nav = (page) => page.getByRole('navigation', { name: 'Main' });

test('the reviewer reads the fast-review package from the inbox, then approves without JavaScript', async () => {
  const page = await (await browser.newContext()).newPage();
  await signIn(page, 'reviewer');
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
  // The timeline: review waiting, the rest pending.
  assert.match(await page.getByRole('list', { name: 'Stages' }).textContent(), /review.*waiting/s);
  await assertAccessible(page, 'release page');

  // No JavaScript at all: the page reads and the decision form works as plain HTML.
  const plain = await (await browser.newContext({ javaScriptEnabled: false })).newPage();
  await plain.goto(`${BASE}/login`);
  await plain.getByLabel('Username').fill('reviewer');
  await plain.getByLabel('Password').fill('stellar-demo');
  await plain.getByRole('button', { name: 'Sign in' }).click();
  await plain.waitForURL(`${BASE}/`);
  assert.equal((await nav(plain).getByTestId('inbox-count').textContent()).trim(), '1');
  await plain.goto(releaseUrl);
  await plain.getByRole('region', { name: 'Fast-review package' }).waitFor();
  await plain.getByLabel('Reason').fill('the new permission is needed for the shuffle feature');
  await plain.getByRole('button', { name: 'Approve' }).click();
  await plain.waitForURL(/\/releases\/[0-9a-f-]{36}\?notice=/);
  await plain.getByRole('status').filter({ hasText: 'Approved' }).waitFor();
  // The badge count drops.
  assert.equal(await nav(plain).getByTestId('inbox-count').count(), 0, 'nothing waits any more');
  // The engine signs and releases it within moments.
  await reloadUntil(plain, async () => /GA/.test(await plain.locator('dl.facts').first().textContent()), 'the release reaches GA');
  assert.match(await plain.locator('dl.facts').first().textContent(), /GA/);
  assert.match(await plain.getByRole('list', { name: 'Stages' }).textContent(), /ga.*succeeded/s);
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
