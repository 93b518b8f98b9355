// A rollout rolls back while a platform user watches. A second demo server runs on a clock 60
// times faster than the wall (five-minute intervals pass in five seconds); the user opens the
// release page of acme-clock 1.1.0 (rolling out at 50 %), then 100 simulated hosts start to
// poll and report over HTTP (`stellar fleet simulate`), 1.1.0 failing one call in six. Without
// reloading, the page follows the rollout until the rollback rules roll it back, and says why:
// the rule, both cohorts' numbers, the fix.
//
// Needs STELLAR_E2E_LIVE_URL (the time-scaled server), STELLAR_E2E_LIVE_TOKEN (a platform API
// token on it) and STELLAR_BIN; `scripts/test` starts that server and sets all three.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { launch, signIn, assertAccessible, hydrated } from './helpers.mjs';

const LIVE = process.env.STELLAR_E2E_LIVE_URL;
const TOKEN = process.env.STELLAR_E2E_LIVE_TOKEN;
const BIN = process.env.STELLAR_BIN;
const SCENARIO = fileURLToPath(new URL('../fixtures/live-error-spike.toml', import.meta.url));
const missing = !(LIVE && TOKEN && BIN) && 'needs STELLAR_E2E_LIVE_URL, STELLAR_E2E_LIVE_TOKEN and STELLAR_BIN (scripts/test sets them)';

let browser;
let fleet;
let fleetLog = '';
before(async () => { if (!missing) browser = await launch(); });
after(async () => {
  fleet?.kill('SIGTERM');
  await browser?.close();
});

async function api(path, body) {
  const res = await fetch(`${LIVE}${path}`, {
    method: body ? 'POST' : 'GET',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: body && JSON.stringify(body),
  });
  assert.ok(res.ok, `${path}: ${res.status} ${await res.clone().text()}`);
  return res.json();
}

test('a platform user watches a rollout roll back, live, and reads why', { skip: missing }, async () => {
  const page = await (await browser.newContext()).newPage();
  await signIn(page, 'platform', LIVE);
  const releases = await api('/api/v1/releases?plugin=acme-clock');
  const rolling = releases.items.find((r) => r.version === '1.1.0');
  assert.ok(rolling, 'the demo rolls acme-clock 1.1.0 out');
  await page.goto(`${LIVE}/releases/${rolling.id}`);
  await hydrated(page);
  const rollout = page.getByRole('region', { name: 'Rollout' });
  assert.match(await rollout.textContent(), /Rolling out|Paused/);
  const status = page.getByRole('status').filter({ hasText: 'Live: this page follows the release' });
  await status.waitFor();

  // The fleet starts: 100 hosts on a group token, at the server's pace.
  const made = await api('/api/v1/fleet/tokens', { name: 'e2e live fleet', group: 'e2e-live' });
  fleet = spawn(BIN, ['fleet', 'simulate', '--server', LIVE, '--token', made.secret, '--hosts', '100',
    '--scenario', SCENARIO, '--time-scale', '60', '--jitter-ms', '50'], { stdio: ['ignore', 'pipe', 'pipe'] });
  fleet.stdout.on('data', (d) => { fleetLog += d; });
  fleet.stderr.on('data', (d) => { fleetLog += d; });

  // The page follows on its own. A rollout the silent demo fleet paused before the hosts came
  // is resumed, as the person watching would.
  const deadline = Date.now() + 150_000;
  const badge = rollout.locator('.badge').first();
  for (;;) {
    const phase = (await badge.textContent()).trim();
    if (phase === 'Rolled back') break;
    assert.ok(Date.now() < deadline, `no rollback after 150 s (phase ${phase}); the simulator said:\n${fleetLog.slice(-2000)}`);
    assert.equal(fleet.exitCode, null, `the simulator stopped:\n${fleetLog.slice(-2000)}`);
    if (phase === 'Paused') {
      await page.getByLabel('Reason').fill('the e2e fleet reports now');
      await page.getByRole('button', { name: 'Resume' }).click();
      await page.waitForURL(/notice=/);
      await hydrated(page);
      continue;
    }
    // Until the page shows another phase (it follows the release on its own), or a while passed.
    await page.waitForFunction(
      (was) => document.querySelector('section.rollout .badge')?.textContent.trim() !== was,
      phase,
      { timeout: 10_000 },
    ).catch(() => {});
  }
  // The live line said so, and the page explains the rollback: the rule, both cohorts, the fix.
  assert.match(await page.getByRole('status').filter({ hasText: 'Rolled back' }).textContent(), /Rolled back: step 2 of 3/);
  const why = rollout.getByRole('note');
  await why.waitFor();
  const text = await why.textContent();
  assert.match(text, /error_rate_regression/);
  assert.match(text, /version 1\.1\.0 fails \d+ in 10,000 calls .* version 1\.0\.0 fails \d+ in 10,000/s);
  assert.match(text, /Fix: /);
  assert.match(await page.locator('dl.facts').first().textContent(), /rolled back at step 2 \(50 %\) by the rollback rules: error_rate_regression/);
  await assertAccessible(page, 'a rollout rolled back live');
});
