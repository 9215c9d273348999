/** A real browser for UI tests: Debian's chromium driven by playwright-core (no browser
 * download). Screenshots go to test-output/ (not committed). */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Locator, type Page } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const SCREENSHOTS = 'test-output/screenshots';

/** `extraArgs`: more chromium switches (say, `--host-resolver-rules=…`). */
export async function launchBrowser(extraArgs: string[] = []): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', ...extraArgs],
  });
  // Every page of this browser navigates steadily (see gotoSteadily): tests' engines change the
  // host's interfaces at any time, and a dropped navigation is not what a UI test is about.
  const newContext = browser.newContext.bind(browser);
  browser.newContext = async (...args) => {
    const context = await newContext(...args);
    const newPage = context.newPage.bind(context);
    context.newPage = async () => steadyPage(await newPage());
    return context;
  };
  return browser;
}

function steadyPage(page: Page): Page {
  const goto = page.goto.bind(page);
  // A load whose own scripts Chromium dropped leaves a blank page behind a "successful" goto.
  let dropped = 0;
  page.on('requestfailed', (req) => {
    if (/ERR_NETWORK_CHANGED/.test(req.failure()?.errorText ?? '') && req.resourceType() === 'script') dropped++;
  });
  page.goto = async (url, options) => {
    for (let attempt = 1; ; attempt++) {
      const before = dropped;
      try {
        const answer = await goto(url, options);
        if (dropped === before || attempt >= 4) return answer;
      } catch (err) {
        if (attempt >= 4 || !/ERR_NETWORK_CHANGED/.test((err as Error).message)) throw err;
      }
      await new Promise((r) => setTimeout(r, 250 * attempt));
    }
  };
  return page;
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

/**
 * A new browser context (1280 × 900, the hub's own CA ignored, trouble reported) on a fresh hub,
 * signed in as the first admin `ada` through the setup page and its setup code; ready once the
 * nav link named `landmark` shows.
 */
export async function openAsFirstAdmin(
  browser: Browser,
  hub: { url: string; dataDir: string },
  landmark: string,
  options: { acceptDownloads?: boolean } = {},
): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 }, ...options });
  reportTrouble(context);
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  await gotoSteadily(page, hub.url);
  await page.getByLabel('Setup code').fill((await readFile(join(hub.dataDir, 'setup.code'), 'utf8')).trim());
  await page.getByLabel('Username').fill('ada');
  await page.getByLabel('Password').fill('a long enough passphrase');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('link', { name: landmark }).waitFor();
  return { context, page };
}

/**
 * page.goto, again when Chromium drops the navigation with ERR_NETWORK_CHANGED: the tests' own
 * engines add bridges and veths while a browser runs, and Chromium aborts loads when the host's
 * interfaces change. Any other failure is thrown at once.
 */
export async function gotoSteadily(page: Page, url: string, tries = 4): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await page.goto(url);
      return;
    } catch (err) {
      if (attempt >= tries || !/ERR_NETWORK_CHANGED/.test((err as Error).message)) throw err;
      await new Promise((r) => setTimeout(r, 250 * attempt));
    }
  }
}

/**
 * The texts of `items` once there is at least one. `allTextContents` does not wait: read just
 * after a change (a select that sends the dialog back to "Loading…" on its next render) it can
 * see the list between two renders, empty. Gives [] only if none appear within `timeoutMs`.
 */
export async function textsOnceListed(items: Locator, timeoutMs = 10_000): Promise<string[]> {
  try {
    await items.first().waitFor({ timeout: timeoutMs });
  } catch {
    return [];
  }
  for (const deadline = Date.now() + timeoutMs; ; await new Promise((r) => setTimeout(r, 50))) {
    const texts = await items.allTextContents();
    if (texts.length > 0 || Date.now() > deadline) return texts;
  }
}
