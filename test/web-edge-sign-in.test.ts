/** Signing in to apps on the edge in a real browser (Debian's chromium; the app hosts mapped to
 * 127.0.0.1 by its resolver rules): a `users` route sends the browser to the hub's sign-in and
 * back to the page it asked for, showing the user's name; a second host needs its own hand-off;
 * a viewer meets 403 on an operator route; forged headers, copied cookies, reused or late codes
 * and returns to other sites are refused; signing out at the hub ends the app's session. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchBrowser, reportTrouble, screenshot } from './support/browser.ts';
import { PASSWORD, startEdgeAccessRig, stopEdgeAccessRig, type EdgeAccessRig } from './support/edge-access-rig.ts';

let rig: EdgeAccessRig;
let browser: Browser;
let ada: BrowserContext;
let page: Page;
/** Every callback URL (with its code) the first browser visited. */
const callbacks: string[] = [];
let early: { url: string; at: number } | null = null;

const app = (host: string, path = '/cgi-bin/env'): string => `https://${host}:${rig.edgePort}${path}`;

async function newContext(): Promise<BrowserContext> {
  // The hub's and the edge's certificates come from the hub's private CA, unknown to this profile.
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1100, height: 800 } });
  reportTrouble(context);
  return context;
}

const NETWORK_CHANGED = /ERR_NETWORK_CHANGED/;

/** Goes to `url` (or, with `until`, waits for the chain of redirects to land there), again when
 * chromium dropped a request because this machine's interfaces changed: engines here add veths
 * and their addresses, and chromium fails whatever is in flight with ERR_NETWORK_CHANGED. A
 * retry starts again from `url` (or `until` itself: signed in at the hub, the hand-off passes by itself). */
async function visit(p: Page, url: string | null, until?: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      if (url !== null) await p.goto(url);
      if (until !== undefined) await p.waitForURL(until);
      return;
    } catch (err) {
      if (attempt >= 3 || !NETWORK_CHANGED.test((err as Error).message)) throw err;
      url ??= until ?? null;
    }
  }
}

async function signInOnHub(p: Page, user: string): Promise<void> {
  await p.getByLabel('Username').fill(user);
  await p.getByLabel('Password').fill(PASSWORD);
  await p.getByRole('button', { name: 'Sign in' }).click();
}

before(async () => {
  rig = await startEdgeAccessRig('webaccess');
  // launchBrowser's pages redo a load whose scripts Chromium dropped when the engine's veths came up.
  browser = await launchBrowser(['--host-resolver-rules=MAP app.test 127.0.0.1, MAP app2.test 127.0.0.1, MAP ops.test 127.0.0.1']);
  ada = await newContext();
  page = await ada.newPage();
  page.setDefaultTimeout(15_000);
  page.on('request', (req) => {
    if (req.url().includes('/.dockfleet/auth')) callbacks.push(req.url());
  });
});

after(async () => {
  await browser?.close();
  if (rig) await stopEdgeAccessRig(rig);
});

test("a users route sends the browser to the hub's sign-in, then back to the page it asked for, with the user's name", async () => {
  await visit(page, app('app.test', '/cgi-bin/env?from=browser'));
  await page.getByText(`Sign in to continue to app.test:${rig.edgePort}.`).waitFor();
  assert.equal(new URL(page.url()).origin, rig.hub.url);
  await screenshot(page, 'edge-sign-in-1100');
  await signInOnHub(page, 'ada');
  await visit(page, null, app('app.test', '/cgi-bin/env?from=browser'));
  const env = await page.locator('body').innerText();
  assert.match(env, /^HTTP_X_DOCKFLEET_USER=ada$/m);
  assert.doesNotMatch(env, /df_edge/);
  assert.ok(callbacks.length >= 1);
  const [cookie] = (await ada.cookies(app('app.test', '/'))).filter((c) => c.name === 'df_edge');
  assert.ok(cookie, 'the edge session cookie');
  assert.equal(cookie.domain, 'app.test', 'host-only');
  assert.equal(cookie.path, '/');
  assert.ok(cookie.httpOnly && cookie.secure && cookie.sameSite === 'Lax');
  // A code asked for now and never used: the last test brings it after its 30 s.
  const hub = await ada.newPage();
  await visit(hub, `${rig.hub.url}/account`);
  const url = await hub.evaluate(async (host) => {
    const res = await fetch('/api/v1/edge/hand-off', { method: 'POST', headers: { 'content-type': 'application/json', 'x-dockfleet-ui': '1' }, body: JSON.stringify({ host, return: '/' }) });
    return ((await res.json()) as { url: string }).url;
  }, `app.test:${rig.edgePort}`);
  early = { url, at: Date.now() };
  await hub.close();
});

test('a second app host needs its own hand-off (no cookie sharing), which passes by itself while signed in at the hub', async () => {
  const visited: string[] = [];
  const onNav = (frame: import('playwright-core').Frame): void => {
    if (frame === page.mainFrame()) visited.push(frame.url());
  };
  page.on('framenavigated', onNav);
  await visit(page, app('app2.test'), app('app2.test'));
  page.off('framenavigated', onNav);
  assert.match(await page.locator('body').innerText(), /^HTTP_X_DOCKFLEET_USER=ada$/m);
  assert.ok(
    visited.some((u) => u.startsWith(`${rig.hub.url}/edge-sign-in?`)),
    `went through the hub: ${visited.join(' → ')}`,
  );
  const first = (await ada.cookies(app('app.test', '/'))).find((c) => c.name === 'df_edge');
  const second = (await ada.cookies(app('app2.test', '/'))).find((c) => c.name === 'df_edge');
  assert.ok(first && second && first.value !== second.value && second.domain === 'app2.test');
});

test('a forged X-Dockfleet-User from the browser is replaced by the signed-in user', async () => {
  await page.setExtraHTTPHeaders({ 'X-Dockfleet-User': 'mallory' });
  try {
    await visit(page, app('app.test'));
    const env = await page.locator('body').innerText();
    assert.match(env, /^HTTP_X_DOCKFLEET_USER=ada$/m);
    assert.doesNotMatch(env, /mallory/);
  } finally {
    await page.setExtraHTTPHeaders({});
  }
});

test('a code is refused the second time, and the refusal signs no one out', async () => {
  assert.ok(callbacks[0]);
  await visit(page, callbacks[0]);
  await page.getByRole('heading', { name: 'This sign-in link cannot be used' }).waitFor();
  await visit(page, app('app.test'));
  assert.match(await page.locator('body').innerText(), /^HTTP_X_DOCKFLEET_USER=ada$/m);
});

test('a return URL to another site is refused at the hub', async () => {
  for (const back of ['https://evil.test/', '//evil.test/', '/\\evil.test/']) {
    const q = new URLSearchParams({ host: `app.test:${rig.edgePort}`, return: back });
    await visit(page, `${rig.hub.url}/edge-sign-in?${q}`);
    await page.getByRole('heading', { name: `Cannot sign in to app.test:${rig.edgePort}` }).waitFor();
    assert.equal(new URL(page.url()).origin, rig.hub.url, back);
  }
  await screenshot(page, 'edge-sign-in-refused-1100');
});

test('a viewer on an operator route gets a 403 page naming the route and the role', async () => {
  const vic = await newContext();
  try {
    const p = await vic.newPage();
    await visit(p, app('ops.test', '/'));
    await signInOnHub(p, 'vic');
    await visit(p, null, app('ops.test', '/'));
    await p.getByRole('heading', { name: 'ops.test needs the operator role' }).waitFor();
    assert.match(await p.locator('body').innerText(), /signed in as vic/);
    await screenshot(p, 'edge-role-403-1100');
  } finally {
    await vic.close();
  }
});

test('a cookie copied to another host is refused', async () => {
  const stolen = (await ada.cookies(app('app.test', '/'))).find((c) => c.name === 'df_edge');
  assert.ok(stolen);
  const other = await newContext();
  try {
    await other.addCookies([{ name: 'df_edge', value: stolen.value, domain: 'app2.test', path: '/', secure: true, httpOnly: true, sameSite: 'Lax' }]);
    const p = await other.newPage();
    await visit(p, app('app2.test'));
    await p.getByLabel('Password').waitFor();
    assert.equal(new URL(p.url()).origin, rig.hub.url, 'sent to sign in, not let through');
  } finally {
    await other.close();
  }
});

test('a code brought after its 30 s is refused', async () => {
  const code = early;
  assert.ok(code);
  await new Promise((r) => setTimeout(r, Math.max(0, code.at + 30_500 - Date.now())));
  await visit(page, code.url);
  await page.getByRole('heading', { name: 'This sign-in link cannot be used' }).waitFor();
});

test('signing out at the hub ends the edge session', async () => {
  await visit(page, `${rig.hub.url}/nodes`);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('Password').waitFor();
  await visit(page, app('app.test'));
  await page.getByLabel('Password').waitFor();
  assert.equal(new URL(page.url()).origin, rig.hub.url);
  assert.equal(new URL(page.url()).pathname, '/edge-sign-in');
});
