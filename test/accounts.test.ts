/** People's accounts: first-run setup, sessions in safe cookies, CSRF guard, rate-limited
 * sign-in, password change ending other sessions, personal tokens, and the live stream. */
import assert from 'node:assert/strict';
import https from 'node:https';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startTestHub, type TestHub } from './support/hub-fixture.ts';

let hub: TestHub;
before(async () => (hub = await startTestHub()));
after(() => hub.stop());

interface Reply { status: number; json: any; headers: Record<string, string | string[] | undefined> }

function call(method: string, path: string, opts: { body?: unknown; cookie?: string; ui?: boolean; token?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
    const req = https.request(new URL(path, hub.url), {
      method, ca: hub.caPem, agent: false,
      headers: {
        ...(payload ? { 'content-type': 'application/json' } : {}),
        ...(opts.cookie ? { cookie: opts.cookie } : {}),
        ...(opts.ui ? { 'x-dockfleet-ui': '1' } : {}),
        ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
      },
    }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => {
        let json: unknown = text;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode ?? 0, json, headers: res.headers });
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

function cookieOf(reply: Reply): string {
  const set = reply.headers['set-cookie'];
  const line = (Array.isArray(set) ? set[0] : set) ?? '';
  return line.split(';')[0]!;
}

let adminCookie = '';

test('first visit: setup creates the admin account once; no default password anywhere', async () => {
  assert.deepEqual((await call('GET', '/api/v1/setup')).json, { needed: true });
  const weak = await call('POST', '/api/v1/setup', { body: { username: 'ada', password: 'short' } });
  assert.equal(weak.json.error.code, 'validation_failed');
  const made = await call('POST', '/api/v1/setup', { body: { username: 'ada', password: 'correct horse battery' } });
  assert.equal(made.status, 201);
  const setCookie = String(made.headers['set-cookie']);
  for (const attr of ['HttpOnly', 'Secure', 'SameSite=Strict', 'Path=/']) assert.ok(setCookie.includes(attr), `${attr} in ${setCookie}`);
  adminCookie = cookieOf(made);
  assert.deepEqual((await call('GET', '/api/v1/setup')).json, { needed: false });
  const again = await call('POST', '/api/v1/setup', { body: { username: 'eve', password: 'another long password' } });
  assert.equal(again.json.error.code, 'invalid_state');
  const db = (await readFile(join(hub.dataDir, 'dockfleet.db'))).toString('latin1') + (await readFile(join(hub.dataDir, 'dockfleet.db-wal')).catch(() => Buffer.alloc(0))).toString('latin1');
  assert.ok(!db.includes('correct horse battery'), 'no plaintext password stored');
  assert.ok(db.includes('scrypt$'), 'a scrypt hash is stored');
});

test('the session cookie authenticates; changes need the UI header (CSRF guard)', async () => {
  assert.deepEqual((await call('GET', '/api/v1/me', { cookie: adminCookie })).json, { name: 'ada', role: 'admin', via: 'session' });
  assert.equal((await call('GET', '/api/v1/me')).status, 401);
  const forged = await call('POST', '/api/v1/tokens', { cookie: adminCookie, body: { name: 'x' } });
  assert.equal(forged.status, 403);
  assert.equal(forged.json.error.code, 'forbidden');
  const fine = await call('POST', '/api/v1/tokens', { cookie: adminCookie, ui: true, body: { name: 'ci' } });
  assert.equal(fine.status, 201);
  assert.equal((await call('GET', '/api/v1/nodes', { cookie: 'df_session=' + 'A'.repeat(43) })).status, 401);
});

test('personal tokens: shown once, listed without the secret, revocable', async () => {
  const made = await call('POST', '/api/v1/tokens', { cookie: adminCookie, ui: true, body: { name: 'laptop' } });
  const token = made.json.token as string;
  assert.equal((await call('GET', '/api/v1/me', { token })).json.name, 'ada');
  const listed = (await call('GET', '/api/v1/tokens', { cookie: adminCookie })).json as Array<{ id: string; name: string }>;
  const entry = listed.find((t) => t.name === 'laptop')!;
  assert.ok(entry);
  assert.ok(!JSON.stringify(listed).includes(token), 'the secret is never listed');
  assert.equal((await call('DELETE', `/api/v1/tokens/${entry.id}`, { cookie: adminCookie, ui: true })).status, 200);
  assert.equal((await call('GET', '/api/v1/me', { token })).status, 401);
});

test('changing the password ends the other sessions, keeps this one', async () => {
  const signedIn = await call('POST', '/api/v1/session', { body: { username: 'ada', password: 'correct horse battery' } });
  assert.equal(signedIn.status, 200);
  const other = cookieOf(signedIn);
  assert.equal((await call('GET', '/api/v1/me', { cookie: other })).status, 200);
  const change = await call('POST', '/api/v1/me/password', { cookie: adminCookie, ui: true, body: { current: 'correct horse battery', next: 'a brand new passphrase' } });
  assert.equal(change.status, 200);
  assert.equal(change.json.otherSessionsEnded, 1);
  assert.equal((await call('GET', '/api/v1/me', { cookie: adminCookie })).status, 200, 'this session stays');
  assert.equal((await call('GET', '/api/v1/me', { cookie: other })).status, 401, 'the other session ended');
  const wrong = await call('POST', '/api/v1/me/password', { cookie: adminCookie, ui: true, body: { current: 'nope nope nope', next: 'another new passphrase' } });
  assert.equal(wrong.json.error.code, 'unauthenticated');
  const relogin = await call('POST', '/api/v1/session', { body: { username: 'ada', password: 'a brand new passphrase' } });
  assert.equal(relogin.status, 200);
});

test('an admin can give a new user a password for the UI', async () => {
  const made = await call('POST', '/api/v1/users', { token: hub.token, body: { name: 'olga', role: 'operator', password: 'operator passphrase' } });
  assert.equal(made.status, 201);
  const signedIn = await call('POST', '/api/v1/session', { body: { username: 'olga', password: 'operator passphrase' } });
  assert.deepEqual(signedIn.json, { name: 'olga', role: 'operator' });
  const weak = await call('POST', '/api/v1/users', { token: hub.token, body: { name: 'weak', role: 'viewer', password: 'short' } });
  assert.equal(weak.json.error.code, 'validation_failed');
});

test('sign-out ends the session', async () => {
  assert.equal((await call('DELETE', '/api/v1/session', { cookie: adminCookie, ui: true })).status, 200);
  assert.equal((await call('GET', '/api/v1/me', { cookie: adminCookie })).status, 401);
});

// Late in the file: it leaves this address rate-limited for sign-in.
test('wrong passwords are refused, then rate-limited with Retry-After', async () => {
  const statuses: number[] = [];
  let retryAfter: string | undefined;
  for (let i = 0; i < 7; i++) {
    const r = await call('POST', '/api/v1/session', { body: { username: 'ada', password: `wrong password ${i}` } });
    statuses.push(r.status);
    if (r.status === 429) retryAfter = String(r.headers['retry-after']);
  }
  assert.deepEqual(statuses.slice(0, 5), [401, 401, 401, 401, 401]);
  assert.equal(statuses.at(-1), 429);
  assert.ok(Number(retryAfter) > 0);
  // Even the right password waits now: the limiter does not tell which guess was right.
  assert.equal((await call('POST', '/api/v1/session', { body: { username: 'ada', password: 'a brand new passphrase' } })).status, 429);
  // Another account from the same address is not locked by ada's limit…
  const other = await call('POST', '/api/v1/session', { body: { username: 'nobody', password: 'whatever it is' } });
  assert.equal(other.json.error.code, 'unauthenticated');
  // …but spraying many accounts from one address hits the address's own, looser limit.
  const sprayed: string[] = [];
  for (let i = 0; i < 20; i++) sprayed.push((await call('POST', '/api/v1/session', { body: { username: `guess${i}`, password: 'hunter2hunter2' } })).json.error.code);
  assert.equal(sprayed.at(-1), 'rate_limited');
});

test('the live stream sends the node list at once to a signed-in client', async () => {
  const text = await new Promise<string>((resolve, reject) => {
    const req = https.request(new URL('/api/v1/stream', hub.url), { ca: hub.caPem, headers: { authorization: `Bearer ${hub.token}` } }, (res) => {
      assert.equal(res.headers['content-type'], 'text/event-stream');
      let got = '';
      res.on('data', (c) => {
        got += c;
        if (got.includes('\n\n')) {
          req.destroy();
          resolve(got);
        }
      });
    });
    req.on('error', (e) => (e.message.includes('aborted') ? null : reject(e)));
    req.end();
  });
  assert.match(text, /^event: nodes\ndata: \[/);
  assert.equal((await call('GET', '/api/v1/stream')).status, 401);
});
