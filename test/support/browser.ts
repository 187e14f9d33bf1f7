import * as fs from 'node:fs';
import type { Browser, BrowserContext, ConsoleMessage, Page } from 'playwright-core';
import { chromium } from 'playwright-core';

/**
 * Debian's chromium, driven by playwright-core over CDP (no browser download: the registry that
 * serves them is not reachable here). CHROMIUM_PATH overrides the path.
 */
export function chromiumPath(): string {
  const p = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  if (!fs.existsSync(p)) throw new Error(`${p} is missing: install Debian's chromium package (apt-get install chromium); .ci/run does`);
  return p;
}

export async function launchChromium(): Promise<Browser> {
  // Chromium refuses its sandbox when run as root (CI runs as root); the pages it loads are our own console.
  const args = process.getuid?.() === 0 ? ['--no-sandbox'] : [];
  return chromium.launch({ executablePath: chromiumPath(), headless: true, args });
}

export interface ConsolePage {
  context: BrowserContext;
  page: Page;
  /** Browser console errors and CSP / Trusted Types violations seen so far. */
  problems: string[];
  /** Every URL the page requested (to prove it talks to this origin only). */
  requests: string[];
}

/** A fresh browser context (no shared storage) with the console open at its sign-in page. */
export async function openConsole(browser: Browser, apiUrl: string, viewport = { width: 1280, height: 900 }, opts: { bypassCSP?: boolean } = {}): Promise<ConsolePage> {
  const context = await browser.newContext({ viewport, acceptDownloads: true, reducedMotion: 'reduce', bypassCSP: opts.bypassCSP ?? false });
  const page = await context.newPage();
  const problems: string[] = [];
  const requests: string[] = [];
  page.on('console', (m: ConsoleMessage) => {
    const t = m.text();
    // A 4xx the console asked for on purpose (a forbidden app) is logged by Chromium as a failed resource; that is not a problem.
    if (m.type() === 'error' && !/Failed to load resource: the server responded with a status of 4\d\d/.test(t)) problems.push(t);
    if (/Content Security Policy|Trusted Type/i.test(t) && !problems.includes(t)) problems.push(t);
  });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(`${apiUrl}/console/`);
  await page.getByLabel('Vault token or management key').waitFor();
  return { context, page, problems, requests };
}

/** Sign in by typing the credential and pressing Enter; resolves once the apps page is shown. */
export async function signIn(page: Page, credential: string): Promise<void> {
  await page.getByLabel('Vault token or management key').fill(credential);
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { level: 1, name: 'Apps' }).waitFor();
}

/**
 * Keyboard only: press Tab until the focused element matches (its accessible text or label), then
 * return. Fails after `max` presses, so a control that cannot be reached by keyboard fails the test.
 */
export async function tabTo(page: Page, match: RegExp, max = 60): Promise<void> {
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab');
    // A string expression: this file compiles without the DOM library (node and jest types only).
    const text = await page.evaluate<string>(`(() => {
      const el = document.activeElement;
      if (!el) return '';
      const label = el.id ? document.querySelector('label[for="' + CSS.escape(el.id) + '"]')?.textContent : '';
      return el.tagName + '|' + (label ?? '') + '|' + (el.getAttribute('aria-label') ?? '') + '|' + (el.textContent ?? '');
    })()`);
    if (match.test(text)) return;
  }
  throw new Error(`no focusable element matching ${match} within ${max} Tab presses`);
}

/** Navigate inside the console by setting its hash route (as a person pasting a console link would). */
export async function go(page: Page, hash: string): Promise<void> {
  await page.evaluate(`location.hash = ${JSON.stringify(hash)}`);
}
