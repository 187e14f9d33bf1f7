import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { projectRoot, waitFor } from '@latchkey/devstack';
import { RunningApi, startApi } from './support/app';
import { ConsolePage, go, launchChromium, openConsole, signIn, tabTo } from './support/browser';
import { call } from './support/http';
import { appManagerToken, createProfile, mintKey, operatorToken, vaultToken } from './support/keys';
import { redisPrefix, rootVault, uniqueId } from './support/stack';
import { webhookReceiver } from './support/webhook';

/**
 * The web console in a real headless Chromium (Debian's package, driven by playwright-core) against the
 * real stack: a spawned api serving /console, OpenBao and Redis. Every action goes through the page as a
 * person would do it; the test checks the outcome through the REST API and Vault.
 *
 * CONSOLE_SCREENSHOTS=<dir> also writes the screenshots committed in docs/console/.
 */
jest.setTimeout(240_000);

const shots = process.env.CONSOLE_SCREENSHOTS ? path.resolve(projectRoot(), process.env.CONSOLE_SCREENSHOTS) : null;
async function screenshot(page: Page, name: string): Promise<void> {
  if (!shots) return;
  fs.mkdirSync(shots, { recursive: true });
  // Secrets shown once (a minted key) are masked: a screenshot in the repository holds no key, even a test one.
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true, mask: [page.locator('input.secret')] });
}

/** axe-core's browser bundle (its own file: it is injected as a string over CDP). */
const AXE_SOURCE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

/** Everything a page holds as text: rendered text plus every input's and textarea's current value (a property, not in the HTML). */
function pageText(page: Page): Promise<string> {
  return page.evaluate<string>(`document.body.innerText + ' ' + [...document.querySelectorAll('input, textarea')].map((i) => i.value).join(' ')`);
}

/** A raw GET whose path is sent as written (fetch would resolve the dot segments before sending). */
function rawGet(base: string, rawPath: string): Promise<number> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    http.get({ host: u.hostname, port: u.port, path: rawPath }, (res) => (res.resume(), resolve(res.statusCode ?? 0))).on('error', reject);
  });
}

describe('web console in Chromium', () => {
  let api: RunningApi;
  let browser: Browser;
  let op: string;
  let profile: string;
  const opened: ConsolePage[] = [];
  const open = async (viewport?: { width: number; height: number }) => {
    const c = await openConsole(browser, api.url, viewport);
    opened.push(c);
    return c;
  };
  const verify = (key: string, extra: Record<string, unknown> = {}) => call(api.url, 'POST', '/v1/keys/verify', { body: { key, ...extra } });

  beforeAll(async () => {
    // Its own Redis prefix: the apps list shows this suite's apps only, whatever else runs beside it.
    [api, { token: op }, browser] = await Promise.all([
      startApi({
        REDIS_PREFIX: `${redisPrefix()}-console-${uniqueId('c')}`,
        USAGE_FLUSH_EVERY: '1s',
        // A webhook receiver on this machine (the Delivery tab's test).
        WEBHOOK_ALLOW_HTTP: 'loopback',
        WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8,::1/128', ROTATION_SCAN_EVERY: '0', RECONCILE_EVERY: '0', EXPIRY_SWEEP_EVERY: '0' }),
      operatorToken(),
      launchChromium(),
    ]);
    profile = await createProfile(api.url, op, { allowedPolicies: ['default', 'orders-read'], ttl: '1h', maxTtl: '24h' });
  });
  afterAll(async () => {
    for (const c of opened) await c.context.close().catch(() => undefined);
    await browser?.close();
    await api?.close();
  });
  afterEach(() => {
    // No page may have hit a CSP or Trusted Types refusal or a script error: the console works within its policy.
    const problems = opened.flatMap((c) => c.problems);
    opened.forEach((c) => (c.problems.length = 0));
    expect(problems).toEqual([]);
  });

  it('is served with a strict CSP and talks to its own origin only', async () => {
    const res = await fetch(`${api.url}/console/`);
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("require-trusted-types-for 'script'");
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|https?:/);
    const html = await res.text();
    // No inline script: the only script is the bundled file.
    expect(html.match(/<script\b[^>]*>/g)).toEqual(['<script type="module" src="./app.js">']);
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    for (const raw of ['/console/../package.json', '/console/%2e%2e%2fpackage.json', '/console/..%2F..%2Fpackage.json', '/console/app.js%00.html']) {
      expect([raw, await rawGet(api.url, raw)]).toEqual([raw, 404]);
    }

    const c = await open();
    await screenshot(c.page, 'signin');
    await signIn(c.page, op);
    const origins = new Set(c.requests.map((u) => new URL(u).origin));
    expect([...origins]).toEqual([api.url]);
    // The credential is held in memory only: no cookie, nothing in localStorage or (unless asked) sessionStorage, not in the URL.
    const stored = await c.page.evaluate('({ cookie: document.cookie, local: localStorage.length, session: sessionStorage.length, url: location.href })');
    expect(stored).toEqual({ cookie: '', local: 0, session: 0, url: expect.stringMatching(/#\/apps$/) });
    expect(c.requests.join(' ')).not.toContain(op);
  });

  it('sign in, mint, verify, watch the usage chart, rotate, revoke, and verify refuses', async () => {
    const appId = uniqueId('shop');
    const c = await open();
    const { page } = c;
    await signIn(page, op);
    await page.getByLabel('Open an app by id').fill(appId);
    await page.getByRole('button', { name: 'Open' }).click();
    await page.getByRole('heading', { level: 1, name: `App ${appId}` }).waitFor();

    // Mint: the key is shown once, with a copy button.
    await page.getByRole('button', { name: 'Mint a key' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Profile').selectOption(profile);
    await dialog.getByLabel('Name').fill('checkout');
    await dialog.getByLabel('Metadata').fill('owner=team-shop');
    await dialog.getByRole('button', { name: 'Mint' }).click();
    const keyField = dialog.getByLabel(/^Key checkout/);
    await keyField.waitFor();
    const key = await keyField.inputValue();
    expect(key).toMatch(/^lk_/);
    await screenshot(page, 'mint');
    await dialog.getByRole('button', { name: 'Copy' }).click();
    await dialog.getByText(/Copied to the clipboard|Copy was refused/).waitFor();
    await dialog.getByRole('link', { name: /^Open key/ }).click();
    await page.getByRole('heading', { level: 1, name: /checkout/ }).waitFor();
    // Closing the dialog dropped the key: no text or field of the page holds it any more.
    expect(await pageText(page)).not.toContain(key);

    // Verify it over HTTP: three valid answers and one refusal, then the chart shows them.
    for (let i = 0; i < 3; i++) expect((await verify(key)).body.code).toBe('VALID');
    expect((await verify(key, { permissions: ['orders-write'] })).body.code).toBe('INSUFFICIENT_PERMISSIONS');
    const chart = page.locator('figure.chart');
    await waitFor('the usage chart to count 3 valid verifications', async () => (await chart.getAttribute('data-valid')) === '3', 30_000);
    await expect(chart.getAttribute('data-refused')).resolves.toBe('1');
    await expect(page.locator('.chart-summary').textContent()).resolves.toContain('INSUFFICIENT_PERMISSIONS 1');
    await page.locator('main').getByText('Last address').waitFor();
    await screenshot(page, 'key');

    // Rotate with a grace period: the new key is shown once; the old one still verifies during grace.
    await page.getByRole('button', { name: 'Rotate' }).click();
    await page.getByLabel(/Grace period/).fill('10m');
    await page.getByRole('dialog').getByRole('button', { name: 'Rotate' }).click();
    const newKey = await page.getByLabel(/^New key/).inputValue();
    expect(newKey).toMatch(/^lk_/);
    expect(newKey).not.toBe(key);
    await page.getByRole('button', { name: /^Done/ }).click();
    await page.locator('main').getByText(/Rotated: the successor is/).waitFor();
    await page.getByRole('heading', { level: 2, name: 'Rotation lineage' }).waitFor();
    expect((await verify(key)).body).toMatchObject({ valid: true, rotating: true });
    expect((await verify(newKey)).body.code).toBe('VALID');

    // Revoke the successor from its own page, after the confirmation.
    const successorId = (await page.locator('.lineage a').last().textContent())!.trim();
    await page.locator('.lineage a').last().click();
    await page.getByRole('heading', { level: 1, name: new RegExp(successorId) }).waitFor();
    // The successor's page shows the successor's events only (no state of the previous key's page survives).
    await page.getByRole('heading', { level: 2, name: 'Events of this key' }).waitFor();
    await page.locator('table.events caption').waitFor();
    const eventKeys = await page.locator('table.events tbody td.mono').allTextContents();
    expect(eventKeys.filter((t) => t.trim() !== successorId)).toEqual([]);
    await page.getByRole('button', { name: 'Revoke…' }).click();
    await page.getByLabel(/Reason/).fill('leaked in a build log');
    await page.getByRole('button', { name: 'Revoke the key' }).click();
    await page.locator('main').getByText(`Key ${successorId} revoked.`).waitFor();
    await page.locator('.badge.state-revoked').first().waitFor();
    const refused = await verify(newKey);
    expect(refused.status).toBe(200);
    expect(refused.body).toMatchObject({ valid: false });
    expect(refused.body.code).not.toBe('VALID');
    // The secrets never reached the URL or storage.
    expect(await page.evaluate('location.href + JSON.stringify(localStorage) + JSON.stringify(sessionStorage)')).not.toMatch(/lk_/);
  });

  it('a person whose Vault policy covers app A only never sees app B', async () => {
    const appA = uniqueId('alpha');
    const appB = uniqueId('bravo');
    await mintKey(api.url, op, { appId: appA, profile, name: 'a-key' });
    const b = await mintKey(api.url, op, { appId: appB, profile, name: 'secret-b-key' });
    const { token: aOnly } = await appManagerToken(appA, [profile]);

    const c = await open();
    const { page } = c;
    await signIn(page, aOnly);
    await page.getByRole('link', { name: appA, exact: true }).waitFor();
    expect(await page.locator('body').textContent()).not.toContain(appB);
    await page.getByRole('link', { name: appA, exact: true }).click();
    await page.getByRole('link', { name: 'a-key' }).waitFor();

    // Typing B's URLs by hand gets the API's refusal and no data.
    for (const hash of [`#/apps/${appB}/keys`, `#/keys/${b.keyId}`, `#/apps/${appB}/usage`, `#/apps/${appB}/certs`, `#/apps/${appB}/audit`, `#/apps/${appB}/delivery`]) {
      // From a page without alerts, so the alert waited for is this page's.
      await go(page, '#/apps');
      await page.getByRole('heading', { level: 1, name: 'Apps' }).waitFor();
      expect(await page.getByRole('alert').count()).toBe(0);
      await go(page, hash);
      const alert = page.getByRole('alert').first();
      await alert.waitFor();
      expect([hash, await alert.textContent()]).toEqual([hash, expect.stringMatching(/FORBIDDEN|NOT_FOUND/)]);
      await page.waitForLoadState('networkidle');
      const text = await pageText(page);
      expect(text).not.toContain('secret-b-key');
      if (!hash.startsWith('#/keys/')) expect(text).not.toContain(b.keyId);
    }
    // Every app's audit trail needs read on latchkey/audit, which A's manager lacks.
    await go(page, '#/audit');
    await page.getByRole('alert').waitFor();
    expect(await page.getByRole('alert').textContent()).toContain('FORBIDDEN');
    // The operator sees both.
    const o = await open();
    await signIn(o.page, op);
    await o.page.getByRole('link', { name: appA, exact: true }).waitFor();
    await o.page.getByRole('link', { name: appB, exact: true }).waitFor();
    await screenshot(o.page, 'apps');
  });

  it('renders a script injected through metadata, a revoke reason or an error message as inert text', async () => {
    const appId = uniqueId('inj');
    const payloads = ['<img src=x onerror="window.__pwned=1">', '<script>window.__pwned=2</script>', '"><svg onload="window.__pwned=3">'];
    const k = await mintKey(api.url, op, { appId, profile, name: 'inj', meta: { note: payloads[0], html: payloads[1], attr: payloads[2] } });
    const other = await mintKey(api.url, op, { appId, profile, name: 'inj2' });
    const revoked = await call(api.url, 'DELETE', `/v1/keys/${other.keyId}?reason=${encodeURIComponent(payloads[0])}`, { token: op });
    expect(revoked.status).toBe(204);

    const c = await open();
    const { page } = c;
    await signIn(page, op);
    for (const id of [k.keyId, other.keyId]) {
      await go(page, `#/keys/${id}`);
      await page.getByRole('heading', { level: 2, name: 'Key', exact: true }).waitFor();
    }
    await go(page, `#/keys/${k.keyId}`);
    await page.locator('main').getByText(payloads[1]).waitFor();
    // Shown as text...
    for (const p of payloads) expect(await page.locator('main').textContent()).toContain(p);
    // ...and never parsed: no element came from it, no handler ran.
    expect(await page.locator('main img, main svg[onload], main script').count()).toBe(0);
    // An app id typed into the URL reaches the API encoded and comes back as an error, not markup.
    await go(page, '#/apps/%3Cimg%20src%3Dx%20onerror%3D%22window.__pwned%3D4%22%3E/keys');
    await page.getByRole('alert').first().waitFor();
    await page.waitForTimeout(500);
    expect(await page.evaluate('typeof window.__pwned')).toBe('undefined');
    expect(await page.locator('img[src="x"]').count()).toBe(0);
  });

  it('mints and revokes with the keyboard only', async () => {
    const appId = uniqueId('kbd');
    const c = await open();
    const { page } = c;
    // Sign in: the credential field has focus on load; type and press Enter.
    await page.keyboard.type(op);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Apps' }).waitFor();
    await tabTo(page, /^INPUT\|Open an app by id/);
    await page.keyboard.type(appId);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: `App ${appId}` }).waitFor();

    await tabTo(page, /^BUTTON\|.*Mint a key/);
    await page.keyboard.press('Enter');
    // The dialog traps focus; the first field (profile) has it.
    await page.getByRole('dialog').waitFor();
    await tabTo(page, /^INPUT\|Name/);
    await page.keyboard.type('kbd-key');
    await page.keyboard.press('Enter');
    const keyField = page.getByLabel(/^Key kbd-key/);
    await keyField.waitFor();
    const key = await keyField.inputValue();
    expect((await verify(key)).body.code).toBe('VALID');
    // Escape does not close a dialog holding a secret shown once: only its own button does.
    await page.keyboard.press('Escape');
    expect(await page.getByRole('dialog').isVisible()).toBe(true);
    await tabTo(page, /^BUTTON\|.*Done/);
    await page.keyboard.press('Enter');
    await page.getByRole('dialog').waitFor({ state: 'hidden' });
    // Focus is back on the control that opened the dialog.
    await waitFor('focus back on "Mint a key"', async () => (await page.evaluate('document.activeElement.textContent')) === 'Mint a key', 5000);

    // Open the key from the list, then revoke it: Tab to the link, Enter, Tab to Revoke…, Enter, confirm.
    await page.getByRole('link', { name: 'kbd-key' }).waitFor();
    await tabTo(page, /^A\|.*kbd-key/);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: /kbd-key/ }).waitFor();
    await tabTo(page, /^BUTTON\|.*Revoke…/);
    await page.keyboard.press('Enter');
    await page.getByRole('dialog').waitFor();
    await tabTo(page, /^BUTTON\|.*Revoke the key/);
    await page.keyboard.press('Enter');
    await page.locator('main').getByText(/revoked\.$/).waitFor();
    expect((await verify(key)).body.valid).toBe(false);
  });

  it('revoke-all needs the app id typed, then revokes every key of the app', async () => {
    const appId = uniqueId('kill');
    const keys = await Promise.all([1, 2].map((i) => mintKey(api.url, op, { appId, profile, name: `k${i}` })));
    const c = await open();
    const { page } = c;
    await signIn(page, op);
    await go(page, `#/apps/${appId}/keys`);
    await page.getByRole('link', { name: 'k1' }).waitFor();
    await page.getByRole('button', { name: 'Revoke all keys…' }).click();
    const confirm = page.getByRole('button', { name: `Revoke all keys of ${appId}` });
    expect(await confirm.isDisabled()).toBe(true);
    await page.getByLabel(/Type the app id/).fill(appId.slice(0, -1));
    expect(await confirm.isDisabled()).toBe(true);
    for (const k of keys) expect((await verify(k.key)).body.code).toBe('VALID');
    await page.getByLabel(/Type the app id/).fill(appId);
    await confirm.click();
    await page.locator('main').getByText(`2 key(s) of ${appId} revoked.`).waitFor();
    for (const k of keys) expect((await verify(k.key)).body.valid).toBe(false);
  });

  it('issues a certificate (PEM and key downloaded once), renews and revokes it, and offers the CA', async () => {
    const appId = uniqueId('certs');
    const c = await open();
    const { page } = c;
    await signIn(page, op);
    await go(page, `#/apps/${appId}/certs`);
    await page.getByRole('button', { name: 'Issue a certificate' }).click();
    await page.getByLabel('Common name').fill(`${appId}-client`);
    await page.getByLabel(/^TTL/).fill('2h');
    await page.getByRole('dialog').getByRole('button', { name: 'Issue' }).click();
    await page.locator('main').getByText(/The private key is offered once/).waitFor();
    const [certDl] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download certificate and chain' }).click()]);
    const [keyDl] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download private key' }).click()]);
    const pem = fs.readFileSync((await certDl.path())!, 'utf8');
    const keyPem = fs.readFileSync((await keyDl.path())!, 'utf8');
    expect(pem).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect(keyPem).toMatch(/-----BEGIN (RSA |EC )?PRIVATE KEY-----/);
    await page.getByRole('button', { name: /^Done/ }).click();
    await page.getByRole('dialog').waitFor({ state: 'hidden' });
    expect(await pageText(page)).not.toContain('PRIVATE KEY');

    await page.getByRole('link', { name: `${appId}-client` }).click();
    await page.getByRole('heading', { level: 1, name: new RegExp(`${appId}-client`) }).waitFor();
    await screenshot(page, 'certificate');
    const serial = (await page.locator('dl.kv dd code').first().textContent())!.trim();
    await page.getByRole('button', { name: 'Renew' }).click();
    await page.getByLabel(/^Grace/).fill('0s');
    await page.getByRole('dialog').getByRole('button', { name: 'Renew' }).click();
    await page.locator('main').getByText(/New serial/).waitFor();
    await page.getByRole('button', { name: /^Done/ }).click();
    await page.locator('main').getByText(/Renewed: the new serial is/).waitFor();
    const renewed = await call(api.url, 'GET', `/v1/certs/${serial}`, { token: op });
    expect(renewed.body.successorSerial).toBeTruthy();

    await go(page, `#/certs/${renewed.body.successorSerial}`);
    await page.getByRole('button', { name: 'Revoke…' }).click();
    await page.getByRole('button', { name: 'Revoke the certificate' }).click();
    await page.locator('main').getByText(/revoked\.$/).waitFor();
    expect((await call(api.url, 'GET', `/v1/certs/${renewed.body.successorSerial}`, { token: op })).body.state).toBe('revoked');

    await go(page, `#/apps/${appId}/certs`);
    const [ca] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download the CA chain' }).click()]);
    expect(fs.readFileSync((await ca.path())!, 'utf8')).toContain('-----BEGIN CERTIFICATE-----');
  });

  it('operators edit a profile; an app team may read it but not change it', async () => {
    const name = await createProfile(api.url, op, { allowedPolicies: ['default'], ttl: '1h', maxTtl: '24h' });
    const c = await open();
    const { page } = c;
    await signIn(page, op);
    await go(page, '#/profiles');
    await page.getByRole('link', { name, exact: true }).click();
    const editor = page.getByLabel(/^Settings/);
    const settings = JSON.parse(await editor.inputValue());
    await editor.fill(JSON.stringify({ ...settings, ttl: '2h' }, null, 2));
    await page.getByRole('button', { name: 'Save' }).click();
    await page.locator('main').getByText('Saved.').waitFor();
    expect((await call(api.url, 'GET', `/v1/profiles/${name}`, { token: op })).body.ttl).toBe('2h');
    await screenshot(page, 'profile');
    // Invalid settings come back field by field, as a 4xx the page shows.
    await editor.fill(JSON.stringify({ ...settings, ttl: 'soon' }, null, 2));
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('alert').waitFor();
    expect(await page.getByRole('alert').textContent()).toMatch(/VALIDATION_FAILED|ttl/);

    const { token: team } = await appManagerToken(uniqueId('team'), [name]);
    const t = await open();
    await signIn(t.page, team);
    await go(t.page, `#/profiles/${name}`);
    // The team may read the profile (the app-manager policy has read on latchkey/profiles/*)...
    const teamEditor = t.page.getByLabel(/^Settings/);
    await teamEditor.waitFor();
    expect(JSON.parse(await teamEditor.inputValue()).ttl).toBe('2h');
    expect(await t.page.getByRole('alert').count()).toBe(0);
    // ...but its save is refused by the API.
    await teamEditor.fill(JSON.stringify({ ...settings, ttl: '3h' }, null, 2));
    await t.page.getByRole('button', { name: 'Save' }).click();
    await t.page.getByRole('alert').waitFor();
    expect(await t.page.getByRole('alert').textContent()).toContain('FORBIDDEN');
    expect((await call(api.url, 'GET', `/v1/profiles/${name}`, { token: op })).body.ttl).toBe('2h');
  });

  it("sets an app's webhook (secret shown once), sends a test event, shows the history, and adjusts credits", async () => {
    const appId = uniqueId('hook');
    const receiver = await webhookReceiver();
    try {
      const k = await mintKey(api.url, op, { appId, profile, name: 'metered', credits: { remaining: 10 } });
      const c = await open();
      const { page } = c;
      await signIn(page, op);
      await go(page, `#/apps/${appId}/delivery`);
      await page.locator('main').getByText('No webhook is set for this app.').waitFor();
      await page.getByRole('button', { name: 'Set a webhook…' }).click();
      await page.getByLabel('Receiver URL').fill(receiver.url);
      await page.getByRole('dialog').getByRole('button', { name: 'Save' }).click();
      const secret = await page.getByLabel('Signing secret').inputValue();
      expect(secret.length).toBeGreaterThan(16);
      await page.getByRole('button', { name: /^Done/ }).click();
      await page.getByRole('dialog').waitFor({ state: 'hidden' });
      expect(await pageText(page)).not.toContain(secret);
      await page.getByRole('button', { name: 'Send a test event' }).click();
      await page.locator('main').getByText(/Test event delivered \(HTTP 200/).waitFor();
      expect(receiver.hooks.map((h) => h.headers['latchkey-event'])).toEqual(['webhook.test']);
      await page.locator('td', { hasText: 'webhook.test' }).first().waitFor();

      await go(page, `#/keys/${k.keyId}`);
      await page.locator('main').getByText(/Credits:/).waitFor();
      await page.getByLabel('Amount').fill('-3');
      await page.getByRole('button', { name: 'Apply' }).click();
      await page.locator('main').getByText('Credits: the balance is now 7.').waitFor();
      expect((await call(api.url, 'GET', `/v1/keys/${k.keyId}`, { token: op })).body.credits.balance).toBe(7);
    } finally {
      await receiver.close();
    }
  });


  it('keeps the session in the tab only when asked, and a revoked credential ends it with the reason', async () => {
    const c = await open();
    const { page } = c;
    // Without "keep": a reload signs out (the credential was in memory only).
    await signIn(page, op);
    await page.reload();
    await page.getByLabel('Vault token or management key').waitFor();
    // With "keep": it survives a reload of this tab, in sessionStorage only.
    await page.getByLabel('Vault token or management key').fill(op);
    await page.getByLabel(/Keep me signed in/).check();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Apps' }).waitFor();
    await page.reload();
    await page.getByRole('heading', { level: 1, name: 'Apps' }).waitFor();
    expect(await page.evaluate('[document.cookie, localStorage.length, sessionStorage.length]')).toEqual(['', 0, 1]);
    // Another tab of the same browser does not inherit it.
    const other = await c.context.newPage();
    await other.goto(`${api.url}/console/`);
    await other.getByLabel('Vault token or management key').waitFor();
    await other.close();
    // Signing out clears it.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Vault token or management key').waitFor();
    expect(await page.evaluate('sessionStorage.length')).toBe(0);

    // A credential revoked in Vault: the next call answers 401 and the console says so.
    const short = await vaultToken(['latchkey-operator']);
    await signIn(page, short.token);
    await rootVault().raw('POST', 'auth/token/revoke-accessor', { accessor: short.accessor });
    // The api caches a caller's lookup for AUTHZ_CACHE_TTL (5 s): navigate until a call meets the revocation.
    const signInField = page.getByLabel('Vault token or management key');
    await waitFor(
      'a call with the revoked token to end the session',
      async () => {
        if (await signInField.isVisible()) return true;
        // Alternate two pages: each arrival loads its data again.
        await go(page, (await page.evaluate('location.hash')) === '#/profiles' ? '#/audit' : '#/profiles');
        await page.waitForTimeout(500);
        return signInField.isVisible();
      },
      30_000,
    );
    await page.locator('main').getByText(/Your session ended \(UNAUTHENTICATED/).waitFor();
    expect(await page.evaluate('location.href + JSON.stringify(sessionStorage)')).not.toContain(short.token);
  });

  it('mints a response-wrapped key: the wrapping token is shown once and unwraps to a working key', async () => {
    const appId = uniqueId('wrap');
    const c = await open();
    const { page } = c;
    await signIn(page, op);
    await go(page, `#/apps/${appId}/keys`);
    await page.getByRole('button', { name: 'Mint a key' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Profile').selectOption(profile);
    await dialog.getByLabel('Name').fill('handed-over');
    await dialog.getByLabel(/Response-wrap the key/).check();
    await dialog.getByLabel('Wrapping token TTL').fill('10m');
    await dialog.getByRole('button', { name: 'Mint' }).click();
    const wrapToken = await dialog.getByLabel('Wrapping token', { exact: true }).inputValue();
    expect(await dialog.locator('#minted-key').count()).toBe(0);
    await dialog.getByRole('button', { name: /^Done/ }).click();
    const unwrapped = await call(api.url, 'POST', '/v1/keys/unwrap', { body: { wrapToken } });
    expect(unwrapped.status).toBe(200);
    expect((await verify(unwrapped.body.key)).body.code).toBe('VALID');
  });

  it('signs a CSR pasted into the page; the key never leaves the client', async () => {
    const appId = uniqueId('csr');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-console-csr-'));
    try {
      const keyFile = path.join(dir, 'client.key');
      execFileSync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-subj', `/CN=${appId}-svc`, '-out', path.join(dir, 'client.csr')], { stdio: 'ignore' });
      const csr = fs.readFileSync(path.join(dir, 'client.csr'), 'utf8');
      const c = await open();
      const { page } = c;
      await signIn(page, op);
      await go(page, `#/apps/${appId}/certs`);
      await page.getByRole('button', { name: 'Sign a CSR' }).click();
      await page.getByLabel('CSR (PEM)').fill(csr);
      await page.getByRole('dialog').getByRole('button', { name: 'Sign' }).click();
      await page.getByRole('dialog').getByText(/^Serial/).waitFor();
      expect(await page.getByRole('button', { name: 'Download private key' }).count()).toBe(0);
      const [dl] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download certificate and chain' }).click()]);
      const pem = fs.readFileSync((await dl.path())!, 'utf8');
      // The certificate is for the CSR's own key.
      const certKey = execFileSync('openssl', ['x509', '-noout', '-pubkey'], { input: pem }).toString();
      const csrKey = execFileSync('openssl', ['pkey', '-pubout', '-in', keyFile]).toString();
      expect(certKey).toBe(csrKey);
      await page.getByRole('button', { name: /^Done/ }).click();
      await page.getByRole('link', { name: `${appId}-svc` }).waitFor();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });


  it('has no WCAG 2.1 A/AA violations that axe-core finds, on every page, at 1280 px and 390 px', async () => {
    const appId = uniqueId('a11y');
    const k = await mintKey(api.url, op, { appId, profile, name: 'a11y-key', meta: { owner: 'team' }, limits: [{ name: 'rps', limit: 100, window: '1s' }], credits: { remaining: 50 } });
    for (let i = 0; i < 3; i++) await verify(k.key);
    await verify(k.key, { permissions: ['orders-write'] });
    const pages: Array<[string, string]> = [
      ['apps', '#/apps'],
      ['keys', `#/apps/${appId}/keys`],
      ['key', `#/keys/${k.keyId}`],
      ['usage', `#/apps/${appId}/usage`],
      ['certs', `#/apps/${appId}/certs`],
      ['delivery', `#/apps/${appId}/delivery`],
      ['audit', '#/audit'],
      ['profiles', '#/profiles'],
      ['profile', `#/profiles/${profile}`],
    ];
    for (const viewport of [{ width: 1280, height: 900 }, { width: 390, height: 844 }]) {
      // axe is injected by the test over CDP; the console's CSP (rightly) refuses any script it did not ship.
      const c = await openConsole(browser, api.url, viewport, { bypassCSP: true });
      opened.push(c);
      const { page } = c;
      const audit = async (name: string) => {
        await page.waitForLoadState('networkidle');
        await page.evaluate(AXE_SOURCE);
        const found = await page.evaluate<Array<{ id: string; impact: string; nodes: Array<{ target: string[] }> }>>(
          `axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } }).then((r) => r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => ({ target: n.target })) })))`,
        );
        expect([`${name} at ${viewport.width}px`, found]).toEqual([`${name} at ${viewport.width}px`, []]);
      };
      await audit('sign-in');
      await signIn(page, op);
      for (const [name, hash] of pages) {
        await go(page, hash);
        await page.getByRole('heading', { level: 1 }).waitFor();
        await audit(name);
      }
      await go(page, `#/apps/${appId}/keys`);
      await page.getByRole('button', { name: 'Mint a key' }).click();
      await page.getByRole('dialog').waitFor();
      await audit('mint dialog');
    }
  });

  it('is usable at a phone width: nothing overflows the screen sideways', async () => {
    const appId = uniqueId('phone');
    const k = await mintKey(api.url, op, { appId, profile, name: 'phone-key' });
    const c = await open({ width: 390, height: 844 });
    const { page } = c;
    await signIn(page, op);
    for (const hash of [`#/apps/${appId}/keys`, `#/keys/${k.keyId}`, '#/audit', '#/profiles']) {
      await go(page, hash);
      await page.getByRole('heading', { level: 1 }).waitFor();
      await page.waitForLoadState('networkidle');
      const overflow = await page.evaluate('document.documentElement.scrollWidth - window.innerWidth');
      expect([hash, overflow]).toEqual([hash, 0]);
    }
    await go(page, `#/keys/${k.keyId}`);
    await page.getByRole('heading', { level: 2, name: 'Usage' }).waitFor();
    await screenshot(page, 'key-phone');
  });
});
