/** People's accounts: first-run setup (only with the hub machine's one-time setup code),
 * sessions in safe cookies, CSRF guard, rate-limited sign-in (counted before the password is
 * checked; known devices pass an account's back-off), password change ending other sessions,
 * personal tokens, and the live stream. */
import assert from 'node:assert/strict';
import https from 'node:https';
import { mkdtemp, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import { addressKey, LoginLimiter } from '../src/hub/auth/login-limiter.ts';
import { startTestHub, type TestHub, removeHubData } from './support/hub-fixture.ts';
import { freePort, spawnDockfleet } from './support/processes.ts';

let hub: TestHub;
before(async () => (hub = await startTestHub()));
after(() => hub.stop());

interface Reply {
  status: number;
  json: any;
  headers: Record<string, string | string[] | undefined>;
}

interface CallOptions {
  body?: unknown;
  cookie?: string;
  ui?: boolean;
  token?: string;
  from?: string;
  on?: TestHub;
}

/** One request on its own connection; `from` picks the source address (127.0.0.N). */
function call(method: string, path: string, opts: CallOptions = {}): Promise<Reply> {
  const target = opts.on ?? hub;
  return new Promise((resolve, reject) => {
    const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
    const req = https.request(
      new URL(path, target.url),
      {
        method,
        ca: target.caPem,
        agent: false,
        ...(opts.from ? { localAddress: opts.from } : {}),
        headers: {
          ...(payload ? { 'content-type': 'application/json' } : {}),
          ...(opts.cookie ? { cookie: opts.cookie } : {}),
          ...(opts.ui ? { 'x-dockfleet-ui': '1' } : {}),
          ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
        },
      },
      (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => {
          let json: unknown = text;
          try {
            json = JSON.parse(text);
          } catch {
            /* not JSON */
          }
          resolve({ status: res.statusCode ?? 0, json, headers: res.headers });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

function cookieOf(reply: Reply, name = 'df_session'): string {
  const set = reply.headers['set-cookie'];
  const lines = Array.isArray(set) ? set : set ? [set] : [];
  return lines.find((l) => l.startsWith(`${name}=`))?.split(';')[0] ?? '';
}

async function dockfleet(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = spawnDockfleet(args);
  const { code } = await p.exited;
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}

const count = (replies: Reply[], status: number): number => replies.filter((r) => r.status === status).length;

let adminCookie = '';

test('first run: setup needs the one-time code from the hub machine; nothing is created without it', async () => {
  assert.deepEqual((await call('GET', '/api/v1/setup')).json, { needed: true });
  const file = join(hub.dataDir, 'setup.code');
  assert.equal((await stat(file)).mode & 0o777, 0o600, 'setup.code is private to the hub user');
  const printed = await dockfleet('setup-code', '--data', hub.dataDir);
  assert.equal(printed.code, 0, printed.stderr);
  const code = printed.stdout.trim();
  assert.equal(code, (await readFile(file, 'utf8')).trim(), 'dockfleet setup-code prints the code in the file');
  assert.match(code, /^[A-Z0-9]{4}(-[A-Z0-9]{4}){4}$/);

  const none = await call('POST', '/api/v1/setup', { body: { username: 'eve', password: 'correct horse battery' } });
  assert.equal(none.status, 401);
  assert.equal(none.json.error.code, 'setup_code_invalid');
  const wrong = await call('POST', '/api/v1/setup', { body: { username: 'eve', password: 'correct horse battery', setupCode: 'AAAA-AAAA-AAAA-AAAA-AAAA' } });
  assert.equal(wrong.json.error.code, 'setup_code_invalid');
  assert.deepEqual((await call('GET', '/api/v1/setup')).json, { needed: true }, 'no account was made');
  assert.equal((await call('POST', '/api/v1/session', { body: { username: 'eve', password: 'correct horse battery' } })).status, 401);

  const weak = await call('POST', '/api/v1/setup', { body: { username: 'ada', password: 'short', setupCode: code } });
  assert.equal(weak.json.error.code, 'validation_failed');
  const made = await call('POST', '/api/v1/setup', { body: { username: 'ada', password: 'correct horse battery', setupCode: code.toLowerCase() } });
  assert.equal(made.status, 201, JSON.stringify(made.json));
  const setCookie = String(made.headers['set-cookie']);
  for (const attr of ['HttpOnly', 'Secure', 'SameSite=Strict', 'Path=/']) assert.ok(setCookie.includes(attr), `${attr} in ${setCookie}`);
  adminCookie = cookieOf(made);
  assert.deepEqual((await call('GET', '/api/v1/setup')).json, { needed: false });
  await assert.rejects(stat(file), { code: 'ENOENT' }, 'the used code is deleted');
  const gone = await dockfleet('setup-code', '--data', hub.dataDir);
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /\[invalid_state\]/);
  const again = await call('POST', '/api/v1/setup', { body: { username: 'eve', password: 'another long password', setupCode: code } });
  assert.equal(again.json.error.code, 'invalid_state');
  const db = (await readFile(join(hub.dataDir, 'dockfleet.db'))).toString('latin1') + (await readFile(join(hub.dataDir, 'dockfleet.db-wal')).catch(() => Buffer.alloc(0))).toString('latin1');
  assert.ok(!db.includes('correct horse battery'), 'no plaintext password stored');
  assert.ok(!db.includes(code), 'the setup code is not stored in the database');
  assert.ok(db.includes('scrypt$'), 'a scrypt hash is stored');
});

test('first run on a second hub: the admin may be named admin, guesses are limited, and two racing setups make one admin', async () => {
  const other = await startTestHub();
  try {
    const code = (await readFile(join(other.dataDir, 'setup.code'), 'utf8')).trim();
    // Someone guessing the code from another address is slowed down…
    const guesses: Reply[] = [];
    for (let i = 0; i < 12; i++)
      guesses.push(
        await call('POST', '/api/v1/setup', {
          on: other,
          from: '127.0.0.7',
          body: { username: 'mallory', password: 'a long guessing password', setupCode: `ZZZZ-ZZZZ-ZZZZ-ZZZZ-${String(i).padStart(4, 'Z')}` },
        }),
      );
    assert.ok(count(guesses, 401) <= 10, `${count(guesses, 401)} guesses were checked`);
    const limited = guesses.at(-1)!;
    assert.equal(limited.status, 429);
    assert.equal(limited.json.error.code, 'rate_limited');
    assert.ok(Number(limited.headers['retry-after']) > 0);
    // …while the right code, from the hub's own operator, still works. Five at once: one admin.
    const raced = await Promise.all(
      Array.from({ length: 5 }, (_, i) => call('POST', '/api/v1/setup', { on: other, body: { username: i === 0 ? 'admin' : `admin${i}`, password: 'the first admin password', setupCode: code } })),
    );
    assert.equal(count(raced, 201), 1, raced.map((r) => r.status).join(' '));
    for (const r of raced.filter((x) => x.status !== 201)) assert.equal(r.json.error.code, 'invalid_state');
    const winner = raced.find((r) => r.status === 201)!.json.name as string;
    for (let i = 0; i < 5; i++) {
      const name = i === 0 ? 'admin' : `admin${i}`;
      const signIn = await call('POST', '/api/v1/session', { on: other, body: { username: name, password: 'the first admin password' } });
      assert.equal(signIn.status, name === winner ? 200 : 401, name);
    }
    // The admin token is its own principal, never the person called admin.
    assert.equal((await other.api('GET', '/api/v1/me')).json.name, 'admin.token');
  } finally {
    await other.stop();
  }
});

test('the user admin and the admin token stay apart: sign-in, /me, tokens and audit', async () => {
  const other = await startTestHub();
  try {
    const code = (await readFile(join(other.dataDir, 'setup.code'), 'utf8')).trim();
    const made = await call('POST', '/api/v1/setup', { on: other, body: { username: 'admin', password: 'the first admin password', setupCode: code } });
    assert.equal(made.status, 201, JSON.stringify(made.json));
    const cookie = cookieOf(made);
    assert.deepEqual((await call('GET', '/api/v1/me', { on: other, cookie })).json, { name: 'admin', role: 'admin', via: 'session', grants: [] });
    assert.deepEqual((await call('GET', '/api/v1/tokens', { on: other, cookie })).json, [], "the admin token is not the user admin's token");
    assert.equal((await other.api('POST', '/api/v1/tokens', { name: 'from-token' })).status, 201);
    const audit = (await other.api('GET', '/api/v1/audit')).json as Array<{ user: string; path: string }>;
    assert.ok(
      audit.some((r) => r.user === 'admin' && r.path === '/api/v1/setup'),
      JSON.stringify(audit),
    );
    assert.ok(
      audit.some((r) => r.user === 'admin.token' && r.path === '/api/v1/tokens'),
      JSON.stringify(audit),
    );
    assert.ok(!audit.some((r) => r.user === 'admin' && r.path === '/api/v1/tokens'), "the token's call is not put on the user admin");
  } finally {
    await other.stop();
  }
});

test('a hub that ran for days on admin.token alone: after an upgrade the same code still works and the admin may be called admin', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'dockfleet-upgrade-'));
  try {
    const first = await startTestHub({ dataDir });
    const code = (await readFile(join(dataDir, 'setup.code'), 'utf8')).trim();
    assert.equal((await first.api('POST', '/api/v1/tokens', { name: 'ci' })).status, 201);
    await first.stop({ keepData: true });
    // Make the database look as an older hub left it: the token's principal was user "admin".
    const db = new Database(join(dataDir, 'dockfleet.db'));
    db.prepare("UPDATE users SET name = 'admin' WHERE id = 'admin'").run();
    db.prepare("DELETE FROM schema_migrations WHERE name LIKE '%admin-token-principal%'").run();
    db.close();
    const upgraded = await startTestHub({ dataDir });
    try {
      assert.equal((await upgraded.api('GET', '/api/v1/me')).json.name, 'admin.token');
      assert.equal((await readFile(join(dataDir, 'setup.code'), 'utf8')).trim(), code, 'a restart keeps the code it printed');
      const made = await call('POST', '/api/v1/setup', { on: upgraded, body: { username: 'admin', password: 'the first admin password', setupCode: code } });
      assert.equal(made.status, 201, JSON.stringify(made.json));
    } finally {
      await upgraded.stop({ keepData: true });
    }
    // Setup done: a restart removes nothing it needs and makes no new code.
    const later = await startTestHub({ dataDir });
    await assert.rejects(stat(join(dataDir, 'setup.code')), { code: 'ENOENT' });
    assert.equal((await call('POST', '/api/v1/setup', { on: later, body: { username: 'eve', password: 'another long password', setupCode: code } })).json.error.code, 'invalid_state');
    await later.stop({ keepData: true });
  } finally {
    await removeHubData(dataDir);
  }
});

test('the sign-in limiter holds bounded memory and counts an IPv6 /64 as one address', () => {
  const limiter = new LoginLimiter({ maxKeys: 1_000 });
  for (let i = 0; i < 20_000; i++) limiter.reserveSignIn({ address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, account: `user${i}`, device: null });
  assert.ok(limiter.size <= 1_000, `${limiter.size} keys held`);
  assert.equal(addressKey('2001:db8:1:2:aaaa::1'), addressKey('2001:db8:1:2:ffff:ffff:ffff:ffff'));
  assert.notEqual(addressKey('2001:db8:1:2::1'), addressKey('2001:db8:1:3::1'));
  assert.equal(addressKey('::ffff:127.0.0.5'), '127.0.0.5');
  const small = new LoginLimiter();
  let refused = 0;
  for (let i = 0; i < 25; i++) if (!small.reserveSignIn({ address: `2001:db8:9:9::${i.toString(16)}`, account: `a${i}`, device: null }).ok) refused++;
  assert.equal(refused, 5, 'twenty attempts per /64, whichever address in it they come from');
});

test('dockfleet hub prints the setup code on stdout while setup is needed, never in its logs', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'dockfleet-setup-'));
  const p = spawnDockfleet(['hub', '--data', dataDir, '--listen', `127.0.0.1:${await freePort()}`]);
  try {
    const line = await p.waitForLine(/first-run setup code:/);
    await p.waitForLine(/hub ready/);
    const code = (await readFile(join(dataDir, 'setup.code'), 'utf8')).trim();
    assert.ok(line.includes(code), line);
    assert.ok(!p.stderr().includes(code), 'the code never reaches the structured logs');
  } finally {
    await p.stop();
    await removeHubData(dataDir);
  }
});

test('the session cookie authenticates; changes need the UI header (CSRF guard)', async () => {
  assert.deepEqual((await call('GET', '/api/v1/me', { cookie: adminCookie })).json, { name: 'ada', role: 'admin', via: 'session', grants: [] });
  assert.equal((await call('GET', '/api/v1/me')).status, 401);
  const forged = await call('POST', '/api/v1/tokens', { cookie: adminCookie, body: { name: 'x' } });
  assert.equal(forged.status, 403);
  assert.equal(forged.json.error.code, 'forbidden');
  const fine = await call('POST', '/api/v1/tokens', { cookie: adminCookie, ui: true, body: { name: 'ci' } });
  assert.equal(fine.status, 201);
  assert.equal((await call('GET', '/api/v1/nodes', { cookie: `df_session=${'A'.repeat(43)}` })).status, 401);
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

test('60 wrong sign-ins at once for one account from one address: at most 5 passwords are checked', async () => {
  assert.equal((await call('POST', '/api/v1/users', { token: hub.token, body: { name: 'bob', role: 'viewer', password: 'bobs own passphrase' } })).status, 201);
  const replies = await Promise.all(Array.from({ length: 60 }, (_, i) => call('POST', '/api/v1/session', { from: '127.0.0.21', body: { username: 'bob', password: `wrong guess ${i}` } })));
  const checked = count(replies, 401);
  assert.ok(checked >= 1 && checked <= 5, `${checked} of 60 were checked against the password`);
  assert.equal(count(replies, 429), 60 - checked);
  const limited = replies.find((r) => r.status === 429)!;
  assert.equal(limited.json.error.code, 'rate_limited');
  assert.ok(Number(limited.headers['retry-after']) > 0);
});

test("guessing from many addresses puts the account in back-off; its owner's known device still gets in", async () => {
  assert.equal((await call('POST', '/api/v1/users', { token: hub.token, body: { name: 'carol', role: 'operator', password: 'carols own passphrase' } })).status, 201);
  const first = await call('POST', '/api/v1/session', { from: '127.0.0.30', body: { username: 'carol', password: 'carols own passphrase' } });
  assert.equal(first.status, 200);
  const device = cookieOf(first, 'df_device');
  assert.ok(device, 'a successful sign-in marks the browser as a known device');
  const deviceLine = ([] as string[]).concat(first.headers['set-cookie'] ?? []).find((l) => l.startsWith('df_device='))!;
  for (const attr of ['HttpOnly', 'Secure', 'SameSite=Strict']) assert.ok(deviceLine.includes(attr), `${attr} in ${deviceLine}`);
  // Twelve addresses, five guesses each, all at once.
  const replies = await Promise.all(
    Array.from({ length: 60 }, (_, i) => call('POST', '/api/v1/session', { from: `127.0.0.${31 + (i % 12)}`, body: { username: 'carol', password: `wrong guess ${i}` } })),
  );
  const checked = count(replies, 401);
  assert.ok(checked <= 10, `${checked} of 60 were checked against the password`);
  // A new browser with the right password waits out the account's back-off…
  const stranger = await call('POST', '/api/v1/session', { from: '127.0.0.50', body: { username: 'carol', password: 'carols own passphrase' } });
  assert.equal(stranger.status, 429);
  assert.equal(stranger.json.error.code, 'rate_limited');
  assert.ok(Number(stranger.headers['retry-after']) > 0);
  // …while the owner's known device signs in at once, from any address.
  const owner = await call('POST', '/api/v1/session', { from: '127.0.0.51', cookie: device, body: { username: 'carol', password: 'carols own passphrase' } });
  assert.equal(owner.status, 200, JSON.stringify(owner.json));
  assert.equal((await call('GET', '/api/v1/me', { cookie: cookieOf(owner) })).json.name, 'carol');
  // A device cookie is bound to its account: it does not let anyone past bob's limit.
  const borrowed = await call('POST', '/api/v1/session', { from: '127.0.0.21', cookie: device, body: { username: 'bob', password: 'bobs own passphrase' } });
  assert.equal(borrowed.status, 429);
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
