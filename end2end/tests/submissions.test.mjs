// Plugin submissions in the portal: a partner uploads a bundle and reads the verdict, with
// each finding's evidence and fix; a refused upload explains itself next to the field; a
// partner of another tenant gets the not-found page for it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { BASE, launch, signIn, assertAccessible, reloadUntil } from './helpers.mjs';

const BUNDLES = process.env.STELLAR_E2E_BUNDLES;
let browser;
let submissionUrl;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('a partner uploads the over-limit example and reads the deny finding with its evidence and fix', async () => {
  assert.ok(BUNDLES, 'STELLAR_E2E_BUNDLES names the folder of packed example bundles');
  const page = await (await browser.newContext()).newPage();
  await signIn(page, 'partner-acme');
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Submissions' }).click();
  await page.getByRole('heading', { name: 'Submissions' }).waitFor();
  await page.getByRole('link', { name: 'Upload a plugin' }).click();
  await page.getByRole('heading', { name: 'Upload a plugin' }).waitFor();
  await assertAccessible(page, 'upload page');
  await page.getByLabel('Bundle', { exact: true }).setInputFiles(path.join(BUNDLES, 'over-memory.tar.gz'));
  await page.getByRole('button', { name: 'Submit for review' }).click();
  await page.waitForURL(/\/submissions\/[0-9a-f-]{36}$/);
  submissionUrl = page.url();
  // The verdict follows within seconds.
  await reloadUntil(page, async () => (await page.getByRole('heading', { name: /^Decision:/ }).count()) > 0, 'the verdict');
  const decision = page.getByRole('heading', { name: /^Decision:/ });
  assert.match(await decision.textContent(), /deny/);
  const finding = page.locator('li.finding', { has: page.locator('code', { hasText: /^mem_limit$/ }) });
  await finding.waitFor();
  assert.match(await finding.locator('.message').textContent(), /1024 MiB of memory; the limit is 512 MiB/);
  assert.match(await finding.locator('ul.evidence').textContent(), /input\.resources\.memory_mb = 1024 > max_memory_mb \(512\)/);
  assert.match(await finding.locator('.fix').textContent(), /set resources\.memory_mb to 512 or less/);
  assert.equal(await finding.getByRole('link', { name: 'About this rule' }).getAttribute('href'),
    'https://stellar.example/docs/rules/mem_limit');
  // Findings are grouped by severity; the plugin's versions are listed.
  await page.getByRole('heading', { name: /^high \(\d+\)$/ }).waitFor();
  await page.getByRole('heading', { name: 'Versions of this plugin' }).waitFor();
  await assertAccessible(page, 'submission page');
  // The list shows it.
  await page.goto(`${BASE}/submissions`);
  await page.getByRole('link', { name: 'acme-big-cache' }).first().waitFor();
  await assertAccessible(page, 'submissions list');
});

test('a refused upload says why next to the field', async () => {
  const page = await (await browser.newContext()).newPage();
  await signIn(page, 'partner-acme');
  await page.goto(`${BASE}/submissions/new`);
  await page.getByLabel('Bundle', { exact: true }).setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not a bundle') });
  await page.getByRole('button', { name: 'Submit for review' }).click();
  await page.waitForURL(/\/submissions\/new\?error=/);
  const alert = page.locator('#bundle-error');
  assert.match(await alert.textContent(), /neither a \.tar\.gz nor a \.zip/);
  assert.equal(await page.getByLabel('Bundle', { exact: true }).getAttribute('aria-invalid'), 'true');
  await assertAccessible(page, 'upload page with an error');
});

test('a partner of the other tenant gets the not-found page for it', async () => {
  assert.ok(submissionUrl, 'the upload test ran first');
  const page = await (await browser.newContext()).newPage();
  await signIn(page, 'partner-globex');
  const res = await page.goto(submissionUrl);
  assert.equal(res.status(), 404);
  await page.getByRole('heading', { name: 'Not found' }).waitFor();
  assert.equal(await page.getByText('acme-big-cache').count(), 0);
});
