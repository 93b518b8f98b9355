// Shared helpers: the browser, the server under test, and signing in.
import { chromium } from 'playwright-core';
import AxeBuilder from '@axe-core/playwright';
import assert from 'node:assert/strict';

export const BASE = process.env.STELLAR_E2E_URL ?? 'http://127.0.0.1:3000';
export const PASSWORD = 'stellar-demo';

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Signs in through the form and waits for the dashboard. */
export async function signIn(page, username, base = BASE) {
  await page.goto(`${base}/login`);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${base}/`);
  await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
}

/** Waits until the wasm bundle has hydrated the page. */
export async function hydrated(page) {
  await page.waitForFunction(() => document.body.dataset.hydrated === 'true', null, { timeout: 30000 });
}

/** Fails on any moderate, serious or critical axe-core violation, listing them. */
export async function assertAccessible(page, what) {
  const results = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']).analyze();
  const bad = results.violations.filter((v) => ['moderate', 'serious', 'critical'].includes(v.impact));
  const summary = bad.map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  assert.deepEqual(summary, [], `${what}: axe-core violations`);
}

/**
 * Reloads `page` until `ready()` holds, for up to `timeout` ms: for pages that show the result
 * of background work (a verdict, a release stage) without pushing it. Fails with `what`.
 */
export async function reloadUntil(page, ready, what, timeout = 60000) {
  const deadline = Date.now() + timeout;
  while (!(await ready())) {
    assert.ok(Date.now() < deadline, `${what}: not there after ${timeout} ms`);
    // The page answers once the work is done; reload waits for the load event, no fixed sleep.
    await page.reload({ waitUntil: 'load' });
  }
}
