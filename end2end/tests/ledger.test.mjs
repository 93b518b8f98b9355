// The audit ledger view: secops and admins see the verification status, filter and page the
// entries (also without JavaScript), open an entry with its inclusion proof, and verify the
// ledger on demand; other roles have no access.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, launch, signIn, hydrated, assertAccessible } from './helpers.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('secops filters the ledger, opens an entry with its proof, and verifies the ledger', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, 'secops');
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Ledger' }).click();
  await page.waitForURL(`${BASE}/ledger`);
  await page.getByRole('heading', { name: 'Audit ledger' }).waitFor();
  await hydrated(page);
  const size = Number(await page.locator('#ledger-size').textContent());
  assert.ok(size > 5, `ledger size ${size}`);
  await assertAccessible(page, 'ledger page');

  // Filter by action: the form is a plain GET, so the filter is in the URL.
  await page.getByLabel('Action').fill('login');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForURL(/\/ledger\?.*action=login/);
  const actions = await page.locator('tbody tr td:nth-child(5)').allTextContents();
  assert.ok(actions.length > 0);
  assert.ok(actions.every((a) => a === 'login'), actions.join(','));

  // The newest entry is not covered by a checkpoint yet: reading never signs one. Sign one.
  await page.locator('tbody tr').first().getByRole('link').click();
  await page.waitForURL(/entry=\d+/);
  await page.getByRole('heading', { name: /^Entry \d+$/ }).waitFor();
  assert.match(await page.locator('#proof-summary').textContent(), /not covered by a signed checkpoint yet/);
  await page.getByRole('button', { name: 'Sign a checkpoint now' }).click();
  await page.getByRole('status').filter({ hasText: /Checkpoint of size \d+ signed/ }).waitFor();

  // Now the entry has its inclusion proof.
  await page.goto(`${BASE}/ledger?action=login`);
  await hydrated(page);
  await page.locator('tbody tr').first().getByRole('link').click();
  await page.waitForURL(/entry=\d+/);
  await page.getByRole('heading', { name: /^Entry \d+$/ }).waitFor();
  await page.getByRole('heading', { name: 'Inclusion proof' }).waitFor();
  assert.match(await page.locator('#proof-summary').textContent(), /checkpoint of size \d+ with \d+ sibling hashes/);
  await assertAccessible(page, 'ledger entry detail');

  // Verify on demand.
  await page.getByRole('button', { name: 'Verify now' }).click();
  await page.getByRole('status').filter({ hasText: 'Verified:' }).waitFor();
  await page.locator('#ledger-verification').filter({ hasText: 'verified' }).waitFor();
  await context.close();
});

test('the ledger renders and filters without JavaScript', async () => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto(`${BASE}/login`);
  await page.getByLabel('Username').fill('admin');
  await page.getByLabel('Password').fill('stellar-demo');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${BASE}/`);
  await page.goto(`${BASE}/ledger?actor=system`);
  const actors = await page.locator('tbody tr td:nth-child(3)').allTextContents();
  assert.ok(actors.length > 0);
  assert.ok(actors.every((a) => a === 'system'), actors.join(','));
  // The newest of system's entries (the demo writes more than a page of them).
  await page.getByRole('link', { name: /^Entry \d+: details and proof$/ }).first().click();
  await page.getByRole('heading', { name: /^Entry \d+$/ }).waitFor();
  await context.close();
});

test('reviewers and partners have no ledger', async () => {
  for (const user of ['reviewer', 'partner-acme']) {
    const context = await browser.newContext();
    const page = await context.newPage();
    await signIn(page, user);
    const nav = page.getByRole('navigation', { name: 'Main' });
    assert.equal(await nav.getByRole('link', { name: 'Ledger' }).count(), 0, user);
    const res = await page.goto(`${BASE}/ledger`);
    assert.equal(res.status(), 403, user);
    await page.getByRole('heading', { name: 'Not allowed' }).waitFor();
    await context.close();
  }
});
