// The portal in a real browser: every role signs in, pages render without JavaScript, work after
// hydration, and have no serious accessibility violations.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, launch, signIn, hydrated, assertAccessible } from './helpers.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const ROLES = [
  { user: 'admin', role: 'Admin', admin: true },
  { user: 'secops', role: 'SecOps', admin: false },
  { user: 'platform', role: 'Platform', admin: false },
  { user: 'reviewer', role: 'Reviewer', admin: false },
  { user: 'partner-acme', role: 'Partner', admin: false, tenant: 'Acme Corp' },
  { user: 'partner-globex', role: 'Partner', admin: false, tenant: 'Globex Corporation' },
];

for (const r of ROLES) {
  test(`${r.user} signs in and sees the navigation of their role`, async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await signIn(page, r.user);
    const nav = page.getByRole('navigation', { name: 'Main' });
    await nav.getByRole('link', { name: 'Dashboard' }).waitFor();
    assert.equal(await nav.getByRole('link', { name: 'Admin' }).count(), r.admin ? 1 : 0);
    assert.equal(await page.locator('.whoami .badge').first().textContent(), r.role);
    if (r.tenant) {
      await page.getByText(`Scope: Tenant ${r.tenant}`).waitFor();
    } else {
      await page.getByText('Scope: All tenants').waitFor();
    }
    // The dashboard says where this role goes next: only partners upload.
    const tasks = page.getByRole('region', { name: 'Where to go' });
    await tasks.getByRole('link', { name: 'Releases' }).waitFor();
    assert.equal(await tasks.getByRole('link', { name: 'Upload a plugin' }).count(), r.role === 'Partner' ? 1 : 0);
    await assertAccessible(page, `dashboard as ${r.user}`);
    await context.close();
  });
}

test('pages are server-rendered: their content is there with JavaScript disabled', async () => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto(`${BASE}/login`);
  await page.getByLabel('Username').fill('admin');
  await page.getByLabel('Password').fill('stellar-demo');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${BASE}/`);
  // Counts come from the database in the HTML itself.
  const tenants = page.locator('.stat', { hasText: 'Tenants' }).locator('.stat-value');
  assert.match(await tenants.textContent(), /^\d+$/);
  await page.goto(`${BASE}/admin`);
  await page.getByRole('cell', { name: 'partner-globex' }).first().waitFor();
  await context.close();
});

test('after hydration the user filter works in the browser', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, 'admin');
  await page.goto(`${BASE}/admin`);
  await hydrated(page);
  const rows = page.locator('#users-table tbody tr');
  assert.ok((await rows.count()) >= 6);
  await page.getByLabel('Filter users').fill('globex');
  await page.waitForFunction(() => document.querySelectorAll('#users-table tbody tr').length === 1);
  assert.match(await rows.first().textContent(), /partner-globex/);
  await page.getByLabel('Filter users').fill('');
  await page.waitForFunction(() => document.querySelectorAll('#users-table tbody tr').length >= 6);
  await assertAccessible(page, 'admin page');
  await context.close();
});

test('a token created in the browser is shown once, without a page reload', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, 'partner-acme');
  await page.goto(`${BASE}/tokens`);
  await hydrated(page);
  await page.evaluate(() => { window.__noReload = true; });
  await page.getByLabel('Name').fill('e2e-laptop');
  await page.getByRole('button', { name: 'Create token' }).click();
  const secret = page.locator('#new-token-secret');
  await secret.waitFor();
  assert.match(await secret.textContent(), /^stl_[A-Za-z0-9_-]{43}$/);
  assert.equal(await page.evaluate(() => window.__noReload), true, 'the page was reloaded');
  await page.getByRole('cell', { name: 'e2e-laptop', exact: true }).first().waitFor();
  await assertAccessible(page, 'tokens page');
  await context.close();
});

test('a partner may not open the admin page; unknown pages are not found', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, 'partner-acme');
  const res = await page.goto(`${BASE}/admin`);
  assert.equal(res.status(), 403);
  await page.getByRole('heading', { name: 'Not allowed' }).waitFor();
  await assertAccessible(page, 'forbidden page');
  const missing = await page.goto(`${BASE}/no-such-page`);
  assert.equal(missing.status(), 404);
  await page.getByRole('heading', { name: 'Not found' }).waitFor();
  await assertAccessible(page, 'not-found page');
  await context.close();
});

test('the sign-in page explains a wrong password and is accessible', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${BASE}/login`);
  await assertAccessible(page, 'login page');
  await page.getByLabel('Username').fill('reviewer');
  await page.getByLabel('Password').fill('wrong-password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').filter({ hasText: 'username or password is wrong' }).waitFor();
  await assertAccessible(page, 'login page with error');
  await context.close();
});

for (const js of [false, true]) {
  test(`keyboard${js ? ' after hydration' : ' without JavaScript'}: the skip link is the first stop and moves focus to the main content`, async () => {
    const context = await browser.newContext({ javaScriptEnabled: js });
    const page = await context.newPage();
    await signIn(page, 'secops');
    // A page whose main content has controls (the dashboard's has none to stop on).
    await page.goto(`${BASE}/submissions`);
    await page.getByRole('heading', { name: 'Submissions', level: 1 }).waitFor();
    if (js) await hydrated(page);
    await page.keyboard.press('Tab');
    const first = await page.evaluate(() => document.activeElement?.textContent);
    assert.equal(first, 'Skip to main content');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => location.hash === '#main');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'main', 'focus is on the main content');
    // The next Tab stop is the first control of the main content, not the navigation again.
    await page.keyboard.press('Tab');
    const next = await page.evaluate(() => {
      const a = document.activeElement;
      const main = document.getElementById('main');
      return { inMain: !!main && main !== a && main.contains(a), tag: a?.tagName, text: a?.textContent?.trim() };
    });
    assert.ok(next.inMain, `after the skip link, Tab reaches the main content (focus is on ${next.tag} "${next.text}")`);
    await context.close();
  });
}

test('signing out ends the session', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, 'platform');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(/\/login/);
  const res = await page.goto(`${BASE}/`);
  assert.match(page.url(), /\/login\?next=/);
  assert.equal(res.status(), 200);
  await context.close();
});
