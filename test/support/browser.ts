/** A real browser for UI tests: Debian's chromium driven by playwright-core (no browser
 * download). Screenshots go to test-output/ (not committed). */
import { mkdir } from 'node:fs/promises';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const SCREENSHOTS = 'test-output/screenshots';

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

export async function screenshot(page: Page, name: string): Promise<void> {
  await mkdir(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: `${SCREENSHOTS}/${name}.png`, fullPage: true });
}

/** Writes every failed request, error answer and page error of `context` to stderr, so a UI
 * test that times out says what the page met on its way (node:test shows it with the failure). */
export function reportTrouble(context: BrowserContext): void {
  context.on('requestfailed', (req) => process.stderr.write(`[browser] request failed: ${req.method()} ${req.url()} ${req.failure()?.errorText ?? ''}\n`));
  context.on('response', (res) => {
    if (res.status() >= 400) process.stderr.write(`[browser] ${res.status()} ${res.request().method()} ${res.url()}\n`);
  });
  context.on('weberror', (err) => process.stderr.write(`[browser] page error: ${err.error().message}\n`));
}
