// Single sign-on through a real OpenID provider (`oidc-provider` on loopback, started by
// scripts/test with three users). Chromium follows the whole authorization code flow: the
// portal's button, the provider's sign-in and consent pages, the callback. A secops engineer
// and an acme partner get their roles from their groups; someone in no mapped group is refused
// with a clear page; after the provider rotates its signing key the next sign-in still works;
// ID tokens signed with a key the provider does not publish, or issued for another client, are
// refused; a replayed callback (`state` used once) is refused.
//
// Needs STELLAR_E2E_OIDC (the provider's URL); scripts/test sets it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, launch, assertAccessible, hydrated } from './helpers.mjs';

const OIDC = process.env.STELLAR_E2E_OIDC;
const missing = !OIDC && 'needs STELLAR_E2E_OIDC (scripts/test starts the provider and sets it)';

let browser;
before(async () => { if (!missing) browser = await launch(); });
after(async () => { await browser?.close(); });

async function control(path) {
  const res = await fetch(`${OIDC}/__control/${path}`, { method: 'POST' });
  assert.ok(res.ok, `${path}: ${res.status}`);
}

/** Signs in at the provider as `login` from the portal's sign-in page; returns the callback URL. */
async function ssoSignIn(page, login) {
  // The provider's development pages load a web font: nothing leaves this machine.
  await page.route('**/*', (route) => (new URL(route.request().url()).hostname === '127.0.0.1' ? route.continue() : route.abort()));
  let callback;
  page.on('request', (r) => { if (r.url().includes('/auth/oidc/callback')) callback = r.url(); });
  await page.goto(`${BASE}/login`);
  await page.getByRole('link', { name: 'Sign in with Test IdP' }).click();
  await page.waitForURL((u) => u.href.startsWith(OIDC), { waitUntil: 'domcontentloaded' });
  await page.locator('input[name=login]').fill(login);
  await page.locator('input[name=password]').fill('any password');
  await page.locator('button[type=submit]').click();
  // The consent page: the first sign-in of each user asks once per grant.
  const consent = page.getByRole('button', { name: 'Continue' });
  await page.waitForURL((u) => u.href.startsWith(BASE) || u.pathname.startsWith('/interaction'), { waitUntil: 'domcontentloaded' });
  if (!page.url().startsWith(BASE)) {
    await consent.click();
    await page.waitForURL((u) => u.href.startsWith(BASE));
  }
  await page.waitForLoadState('load');
  return callback;
}

test('a secops engineer signs in through the provider and gets the secops role', { skip: missing }, async () => {
  const page = await (await browser.newContext()).newPage();
  const callback = await ssoSignIn(page, 'sam');
  assert.ok(callback, 'the provider sent the browser back');
  await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
  const nav = page.getByRole('navigation', { name: 'Main' });
  assert.equal(await nav.getByRole('link', { name: 'Ledger' }).count(), 1, 'secops read the ledger');
  assert.match(await page.locator('header').textContent(), /Sam Secops/);
  // The same callback again in the same browser (its `state` is spent): refused, and the page
  // says why.
  const replay = await page.context().newPage();
  await replay.goto(callback);
  await replay.waitForURL(/\/login\?error=sso_state/);
  assert.match(await replay.getByRole('alert').textContent(), /already used or is too old/);
  // Login CSRF: a sign-in started elsewhere (its cookie stays with whoever started it) and
  // followed in this browser is refused at the callback, its `state` not this browser's.
  const started = await fetch(`${BASE}/auth/oidc/start?next=/`, { redirect: 'manual' });
  assert.equal(started.status, 303);
  const victim = await (await browser.newContext()).newPage();
  await victim.route('**/*', (route) => (new URL(route.request().url()).hostname === '127.0.0.1' ? route.continue() : route.abort()));
  await victim.goto(started.headers.get('location'), { waitUntil: 'domcontentloaded' });
  await victim.locator('input[name=login]').fill('uma');
  await victim.locator('input[name=password]').fill('any password');
  await victim.locator('button[type=submit]').click();
  await victim.waitForURL((u) => u.href.startsWith(BASE) || u.pathname.startsWith('/interaction'), { waitUntil: 'domcontentloaded' });
  if (!victim.url().startsWith(BASE)) await victim.getByRole('button', { name: 'Continue' }).click();
  await victim.waitForURL(/\/login\?error=sso_state/);
});

test('an acme partner signs in and sees acme; someone in no Stellar group is refused', { skip: missing }, async () => {
  const page = await (await browser.newContext()).newPage();
  await ssoSignIn(page, 'pia');
  await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
  assert.match(await page.locator('header').textContent(), /Pia Partner/);
  await page.goto(`${BASE}/submissions`);
  assert.match(await page.locator('main').textContent(), /acme/);
  assert.doesNotMatch(await page.locator('main').textContent(), /globex/);

  const refused = await (await browser.newContext()).newPage();
  await ssoSignIn(refused, 'uma');
  await refused.waitForURL(/\/login\?error=sso_unmapped/);
  assert.match(await refused.getByRole('alert').textContent(), /none of your groups gives a role in Stellar/);
  await assertAccessible(refused, 'the sign-in page refusing an unmapped user');
});

test('after the provider rotates its key the next sign-in works; forged and misaddressed ID tokens are refused', { skip: missing }, async () => {
  await control('rotate');
  const page = await (await browser.newContext()).newPage();
  await ssoSignIn(page, 'sam');
  await page.getByRole('heading', { name: 'Dashboard' }).waitFor();

  for (const mode of ['foreign-key', 'wrong-audience']) {
    await control(`mode/${mode}`);
    try {
      const bad = await (await browser.newContext()).newPage();
      await ssoSignIn(bad, 'sam');
      await bad.waitForURL(/\/login\?error=sso_token/);
      assert.match(await bad.getByRole('alert').textContent(), /failed a security check/, mode);
    } finally {
      await control('mode/normal');
    }
  }
});

test('someone removed from the Stellar groups at the provider is refused at the next sign-in and loses sessions and tokens', { skip: missing }, async () => {
  const page = await (await browser.newContext()).newPage();
  await ssoSignIn(page, 'lea');
  await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
  // An API token made while she could.
  await page.goto(`${BASE}/tokens`);
  await hydrated(page);
  await page.getByLabel('Name').fill('lea-laptop');
  await page.getByRole('button', { name: 'Create token' }).click();
  const secret = (await page.locator('#new-token-secret').textContent()).trim();
  const me = (token) => fetch(`${BASE}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal((await me(secret)).status, 200);

  // She leaves the group at the provider; her next sign-in (the session's re-validation) is
  // refused, and with it her account is disabled, her sessions end, her tokens stop working.
  await control('groups/lea/marketing');
  const again = await (await browser.newContext()).newPage();
  await ssoSignIn(again, 'lea');
  await again.waitForURL(/\/login\?error=sso_unmapped/);
  assert.equal((await me(secret)).status, 401);
  await page.goto(`${BASE}/`);
  await page.waitForURL(/\/login/);
});
