/** Access to routes on the edge: `users` and role routes need a hub sign-in handed on to the app's
 * host. First the gate on its own (real store and secret box, a clock the test moves), then end to
 * end through the edge port (real hub, agent, engine, labelled container): the redirect to the
 * hub, the one-time code, the host-bound cookie, the trusted user header, roles, WebSockets, and
 * the session ending with the hub's. */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import { SecretBox } from '../src/hub/secret-box.ts';
import { createSession } from '../src/hub/auth/sessions.ts';
import { EdgeSignIn } from '../src/hub/edge/access/edge-sign-in.ts';
import { routesFromLabels } from '../src/hub/edge/route-labels.ts';
import { roleAdmits } from '../src/hub/edge/access/access-levels.ts';
import type { EdgeAdmission } from '../src/hub/edge/edge-access-gate.ts';
import { authority, changeUser, edgeCookieFrom, edgeGet, edgeSession, handOff, hubSignIn, startEdgeAccessRig, stopEdgeAccessRig, type EdgeAccessRig } from './support/edge-access-rig.ts';
import { hubRequest } from './support/hub-request.ts';

const HTML = { accept: 'text/html,application/xhtml+xml' };

describe('the gate on its own', () => {
  let dir: string;
  let store: SqliteStore;
  let now = 1_700_000_000_000;
  let signIn: EdgeSignIn;
  const routes = {
    match(host: string, path: string) {
      if (host === 'app.test') return { host, path: '/', target: { access: 'users', node: 'n1' } };
      if (host === 'ops.test') return { host, path: '/', target: { access: 'operator' } };
      if (host === 'deep.test') return path.startsWith('/app') ? { host, path: '/app', target: { access: 'users', node: 'n1' } } : null;
      if (host === 'open.test') return { host, path: '/', target: { access: 'public', node: 'n1' } };
      return null;
    },
  };
  const req = (url: string, headers: Record<string, string> = {}, method = 'GET') => ({ url, method, headers }) as unknown as IncomingMessage;
  let principal: { userId: string; name: string; role: 'viewer'; via: 'session'; sessionHash: string };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dockfleet-gate-'));
    store = new SqliteStore(join(dir, 'db'));
    await store.migrate();
    await store.insertUser({ id: 'u1', name: 'vic', role: 'viewer', createdAt: now, disabledAt: null });
    const session = await createSession(store, 'u1');
    principal = { userId: 'u1', name: 'vic', role: 'viewer', via: 'session', sessionHash: session.idHash };
    signIn = new EdgeSignIn({ store, secrets: new SecretBox(Buffer.alloc(32, 7)), routes, now: () => now });
    signIn.servesOn(8443);
  });
  after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const gate = () => signIn.gate('https://hub.test:7443');
  const callback = async (url: string, host = 'app.test'): Promise<EdgeAdmission> => {
    const u = new URL(url);
    return gate().admit(req(u.pathname + u.search, HTML), { host, path: '/', access: 'users', node: 'n1' });
  };

  test('roles rank admin > operator > viewer; users admits every role', () => {
    assert.equal(roleAdmits('viewer', 'users'), true);
    assert.equal(roleAdmits('viewer', 'operator'), false);
    assert.equal(roleAdmits('admin', 'operator'), true);
    assert.equal(roleAdmits('operator', 'admin'), false);
    assert.equal(roleAdmits('admin', 'staff'), false);
  });

  test('an access label naming no role is a label mistake on the route, not a route nobody can open', () => {
    const [claim] = routesFromLabels({ 'dockfleet.ingress.host': 'a.test', 'dockfleet.ingress.port': '80', 'dockfleet.ingress.access': 'staff' }, [80]);
    assert.match(claim?.error ?? '', /dockfleet\.ingress\.access: "staff" is not public, users, admin, operator or viewer/);
    const [good] = routesFromLabels({ 'dockfleet.ingress.host': 'a.test', 'dockfleet.ingress.port': '80', 'dockfleet.ingress.access': 'operator' }, [80]);
    assert.equal(good?.error, null);
  });

  test('a code is taken once, and not after its 30 s', async () => {
    const first = signIn.handOff(principal, 'app.test:8443', '/x?y=1');
    assert.match(first.url, /^https:\/\/app\.test:8443\/\.dockfleet\/auth\?code=[A-Za-z0-9_-]{43}$/);
    const ok = await callback(first.url);
    assert.equal(ok.pass, false);
    assert.equal(!ok.pass && ok.status, 302);
    assert.equal(!ok.pass && ok.headers.location, '/x?y=1');
    const again = await callback(first.url);
    assert.equal(!again.pass && again.status, 400, 'a used code is refused');
    const late = signIn.handOff(principal, 'app.test', '/');
    now += 30_001;
    assert.equal(await callback(late.url).then((a) => !a.pass && a.status), 400, 'a late code is refused');
  });

  test('a code is bound to its host and to the hub session it came from', async () => {
    const forApp = signIn.handOff(principal, 'app.test', '/');
    const elsewhere = await gate().admit(req(new URL(forApp.url).pathname + new URL(forApp.url).search, HTML), { host: 'ops.test', path: '/', access: 'operator', node: 'n1' });
    assert.equal(!elsewhere.pass && elsewhere.status, 400, 'a code for app.test is refused on ops.test');
    const second = await createSession(store, 'u1');
    const other = { ...principal, sessionHash: second.idHash };
    const pending = signIn.handOff(other, 'app.test', '/');
    await store.deleteSession(second.idHash);
    assert.equal(await callback(pending.url).then((a) => !a.pass && a.status), 400, 'the hub session ended before the callback');
  });

  test('the hand-off refuses other sites, other ports, public and unknown hosts, and tokens', () => {
    const code = (host: string, back: string, who: object = principal) => {
      try {
        signIn.handOff(who as typeof principal, host, back);
        return 'issued';
      } catch (err) {
        return (err as { code: string }).code;
      }
    };
    for (const back of ['https://evil.test/', '//evil.test/', '/\\evil.test', 'evil', '/ok\r\nx: y', '']) assert.equal(code('app.test', back), 'validation_failed', back);
    assert.equal(code('app.test:9999', '/'), 'validation_failed', 'a port that is not the edge port');
    assert.equal(code('evil.test', '/'), 'not_found');
    assert.equal(code('open.test', '/'), 'not_found');
    assert.equal(code('deep.test', '/other'), 'not_found', 'a path outside the route');
    assert.equal(code('app.test', '/', { ...principal, via: 'token', sessionHash: undefined }), 'forbidden');
    assert.match(signIn.handOff(principal, 'deep.test', '/app/page').url, /^https:\/\/deep\.test\/app\/\.dockfleet\/auth\?code=/, 'the callback sits under the route prefix');
    assert.equal(code('app.test:8443', '/a/../b?c#d'), 'issued');
  });

  test('a session cookie opens only on its host, and not after it expires', async () => {
    const { url } = signIn.handOff(principal, 'app.test', '/');
    const made = await callback(url);
    const cookie = !made.pass ? (made.headers['set-cookie'] ?? '') : '';
    assert.match(cookie, /^df_edge=v1\.[A-Za-z0-9_-]+; Path=\/; HttpOnly; Secure; SameSite=Lax; Max-Age=43200$/);
    const pair = cookie.split(';')[0]!;
    const on = (host: string, access = 'users') => gate().admit(req('/', { ...HTML, cookie: pair }), { host, path: '/', access, node: 'n1' });
    assert.deepEqual(await on('app.test'), { pass: true, user: 'vic' });
    const copied = await on('deep.test');
    assert.equal(!copied.pass && copied.status, 302, 'a cookie copied to another host is refused');
    const tampered = await gate().admit(req('/', { ...HTML, cookie: `${pair.slice(0, -2)}AA` }), { host: 'app.test', path: '/', access: 'users', node: 'n1' });
    assert.equal(tampered.pass, false);
    now += 12 * 3600_000;
    const expired = await on('app.test');
    assert.equal(!expired.pass && expired.status, 302, 'an expired edge session sends the browser to sign in again');
  });

  test('a user granted only some nodes (a customer) passes only to apps on those nodes, by name or by label', async () => {
    const { url } = signIn.handOff(principal, 'app.test', '/');
    const made = await callback(url);
    const pair = (!made.pass ? (made.headers['set-cookie'] ?? '') : '').split(';')[0]!;
    const on = (node: string, access = 'users') => gate().admit(req('/', { ...HTML, cookie: pair }), { host: 'app.test', path: '/', access, node });
    assert.deepEqual(await on('n1'), { pass: true, user: 'vic' }, 'a global viewer passes a users route anywhere');
    await store.access.setUserAccess('u1', 'viewer', true);
    await store.access.insertGrant({ id: 'g1', userId: 'u1', node: 'n2', labelKey: null, labelValue: null, role: 'viewer', createdAt: now });
    try {
      const elsewhere = await on('n1');
      assert.equal(!elsewhere.pass && elsewhere.status, 403, 'scoped to n2, the app on n1 is not theirs');
      assert.deepEqual(await on('n2'), { pass: true, user: 'vic' });
      const higher = await on('n2', 'operator');
      assert.equal(!higher.pass && higher.status, 403, 'a viewer grant does not pass an operator route');
      // By label: the gate asks the node's labels at each request.
      const labelled = new EdgeSignIn({
        store,
        secrets: new SecretBox(Buffer.alloc(32, 7)),
        routes,
        now: () => now,
        labelsOf: (n): Record<string, string> => (n === 'n3' ? { customer: 'acme' } : {}),
      });
      await store.access.insertGrant({ id: 'g2', userId: 'u1', node: null, labelKey: 'customer', labelValue: 'acme', role: 'operator', createdAt: now });
      const byLabel = (node: string) => labelled.gate('https://hub.test:7443').admit(req('/', { ...HTML, cookie: pair }), { host: 'app.test', path: '/', access: 'operator', node });
      assert.deepEqual(await byLabel('n3'), { pass: true, user: 'vic' });
      assert.equal((await byLabel('n1')).pass, false);
    } finally {
      await store.access.deleteGrant('u1', 'g1');
      await store.access.deleteGrant('u1', 'g2');
      await store.access.setUserAccess('u1', 'viewer', false);
    }
  });
});

describe('through the edge', () => {
  let rig: EdgeAccessRig;
  let early: { url: string; at: number };

  before(async () => {
    rig = await startEdgeAccessRig('access');
    // A code asked for now and never used: the last test brings it after its 30 s.
    const session = await hubSignIn(rig, 'vic');
    const answer = await handOff(rig, session, authority(rig, 'app.test'), '/');
    early = { url: answer.json?.url as string, at: Date.now() };
  });
  after(async () => {
    if (rig) await stopEdgeAccessRig(rig);
  });

  test("a browser without a session is sent to the hub's hand-off page with its host and path; other clients get 401", async () => {
    const browser = await edgeGet(rig, 'app.test', '/cgi-bin/env?x=1', HTML);
    assert.equal(browser.status, 302);
    const to = new URL(String(browser.headers.location));
    assert.equal(to.origin, rig.hub.url);
    assert.equal(to.pathname, '/edge-sign-in');
    assert.equal(to.searchParams.get('host'), authority(rig, 'app.test'));
    assert.equal(to.searchParams.get('return'), '/cgi-bin/env?x=1');
    const api = await edgeGet(rig, 'app.test', '/cgi-bin/env');
    assert.equal(api.status, 401);
    assert.match(api.text, /app\.test/);
    assert.doesNotMatch(api.text, /HTTP_/, 'nothing reached the app');
    const post = await edgeGet(rig, 'app.test', '/cgi-bin/env', HTML, 'POST');
    assert.equal(post.status, 401, 'only a GET navigation is redirected');
    assert.equal((await edgeGet(rig, 'open.test', '/cgi-bin/env')).status, 200, 'a public route needs nothing');
  });

  test("after the hand-off the app receives the user's name, never a client's forgery, and never the edge cookie", async () => {
    const session = await hubSignIn(rig, 'vic');
    const code = await handOff(rig, session, authority(rig, 'app.test'), '/cgi-bin/env?from=hand-off');
    assert.equal(code.status, 200);
    assert.equal(code.headers['cache-control'], 'no-store');
    const callback = new URL(code.json.url as string);
    assert.equal(callback.host, authority(rig, 'app.test'));
    const back = await edgeGet(rig, 'app.test', callback.pathname + callback.search, HTML);
    assert.equal(back.status, 302);
    assert.equal(back.headers.location, '/cgi-bin/env?from=hand-off');
    const set = [back.headers['set-cookie'] ?? []].flat()[0] ?? '';
    assert.match(set, /HttpOnly/);
    assert.match(set, /Secure/);
    assert.match(set, /SameSite=Lax/);
    assert.match(set, /Path=\//);
    assert.doesNotMatch(set, /Domain=/i, 'host-only');
    const cookie = edgeCookieFrom(back.headers)!;
    const page = await edgeGet(rig, 'app.test', '/cgi-bin/env', { cookie: `${cookie}; theme=dark`, 'x-dockfleet-user': 'mallory' });
    assert.equal(page.status, 200);
    assert.match(page.text, /^HTTP_X_DOCKFLEET_USER=vic$/m);
    assert.doesNotMatch(page.text, /mallory/);
    assert.match(page.text, /^HTTP_COOKIE=theme=dark$/m, 'the app keeps its own cookies');
    assert.doesNotMatch(page.text, /df_edge/);
    const reused = await edgeGet(rig, 'app.test', callback.pathname + callback.search, HTML);
    assert.equal(reused.status, 400, 'the code works once');
    assert.equal(edgeCookieFrom(reused.headers), null);
    const forged = await edgeGet(rig, 'open.test', '/cgi-bin/env', { 'x-dockfleet-user': 'mallory' });
    assert.doesNotMatch(forged.text, /mallory/, 'a public route gets no user header, and never a forged one');
  });

  test('each app host needs its own hand-off: a cookie copied to another host is refused', async () => {
    const session = await hubSignIn(rig, 'vic');
    const cookie = await edgeSession(rig, session, 'app.test');
    assert.equal((await edgeGet(rig, 'app.test', '/', { cookie })).status, 200);
    const copied = await edgeGet(rig, 'app2.test', '/cgi-bin/env', { ...HTML, cookie });
    assert.equal(copied.status, 302);
    assert.match(String(copied.headers.location), /\/edge-sign-in\?host=app2\.test/);
    assert.match(String(copied.headers['set-cookie']), /^df_edge=; .*Max-Age=0/, 'the foreign cookie is cleared');
    const own = await edgeSession(rig, session, 'app2.test');
    assert.notEqual(own, cookie);
    assert.match((await edgeGet(rig, 'app2.test', '/cgi-bin/env', { cookie: own })).text, /^HTTP_X_DOCKFLEET_USER=vic$/m);
  });

  test('a role route: a viewer gets 403 naming the route and role; a role change applies to the next request', async () => {
    const session = await hubSignIn(rig, 'vic');
    const cookie = await edgeSession(rig, session, 'ops.test');
    const refused = await edgeGet(rig, 'ops.test', '/cgi-bin/env', { ...HTML, cookie });
    assert.equal(refused.status, 403);
    assert.match(refused.text, /ops\.test needs the operator role/);
    assert.match(refused.text, /vic/);
    assert.doesNotMatch(refused.text, /HTTP_/);
    const operator = await edgeSession(rig, await hubSignIn(rig, 'opal'), 'ops.test');
    assert.match((await edgeGet(rig, 'ops.test', '/cgi-bin/env', { cookie: operator })).text, /^HTTP_X_DOCKFLEET_USER=opal$/m);
    const admin = await edgeSession(rig, await hubSignIn(rig, 'ada'), 'ops.test');
    assert.equal((await edgeGet(rig, 'ops.test', '/', { cookie: admin })).status, 200, 'an admin passes an operator route');
    try {
      changeUser(rig, 'vic', { role: 'operator' });
      assert.equal((await edgeGet(rig, 'ops.test', '/', { cookie })).status, 200, 'promoted: the same cookie passes');
      changeUser(rig, 'opal', { role: 'viewer' });
      assert.equal((await edgeGet(rig, 'ops.test', '/', { cookie: operator })).status, 403, 'demoted: refused at once');
    } finally {
      changeUser(rig, 'vic', { role: 'viewer' });
      changeUser(rig, 'opal', { role: 'operator' });
    }
  });

  test('a WebSocket upgrade is held to the same rule: 401 without a session (no redirect), through with one', async () => {
    const upgrade = (cookie?: string) =>
      new Promise<{ status: number; echo: string; location?: string }>((resolve, reject) => {
        const req = https.request({
          host: '127.0.0.1',
          port: rig.edgePort,
          servername: 'ws.test',
          path: '/socket',
          headers: { host: authority(rig, 'ws.test'), connection: 'Upgrade', upgrade: 'websocket', ...HTML, ...(cookie ? { cookie } : {}) },
          ca: rig.hub.caPem,
          checkServerIdentity: () => undefined,
          agent: false,
        });
        req.on('response', (res) => {
          res.resume();
          resolve({ status: res.statusCode ?? 0, echo: '', ...(res.headers.location ? { location: res.headers.location } : {}) });
        });
        req.on('upgrade', (res, socket, head) => {
          let text = head.toString();
          socket.on('data', (c: Buffer) => {
            text += c.toString();
            if (text.includes('ping-access')) {
              socket.destroy();
              resolve({ status: res.statusCode ?? 0, echo: text });
            }
          });
          socket.write('ping-access');
        });
        req.on('error', reject);
        req.end();
      });
    const without = await upgrade();
    assert.equal(without.status, 401);
    assert.equal(without.location, undefined);
    const cookie = await edgeSession(rig, await hubSignIn(rig, 'vic'), 'ws.test');
    const other = await edgeSession(rig, await hubSignIn(rig, 'vic'), 'app.test');
    assert.equal((await upgrade(other)).status, 401, "another host's cookie does not open a WebSocket");
    const through = await upgrade(cookie);
    assert.equal(through.status, 101);
    assert.match(through.echo, /\r\nx-dockfleet-user: vic\r\n/i);
    assert.doesNotMatch(through.echo, /df_edge/);
  });

  test('signing out at the hub, or a disabled user, ends the edge session', async () => {
    const session = await hubSignIn(rig, 'vic');
    const cookie = await edgeSession(rig, session, 'app.test');
    assert.equal((await edgeGet(rig, 'app.test', '/', { cookie })).status, 200);
    const out = await hubRequest(rig.hub.url, rig.hub.caPem, '/api/v1/session', { method: 'DELETE', headers: { cookie: session, 'x-dockfleet-ui': '1' } });
    assert.equal(out.status, 200);
    assert.equal((await edgeGet(rig, 'app.test', '/', { cookie })).status, 401);
    const again = await edgeSession(rig, await hubSignIn(rig, 'opal'), 'app.test');
    try {
      changeUser(rig, 'opal', { disabled: true });
      assert.equal((await edgeGet(rig, 'app.test', '/', { cookie: again })).status, 401);
    } finally {
      changeUser(rig, 'opal', { disabled: false });
    }
  });

  test('the hand-off refuses a return to another site, a host that is not a route needing sign-in, and a token caller', async () => {
    const session = await hubSignIn(rig, 'vic');
    for (const back of ['https://evil.test/', '//evil.test/x', '/\\evil.test']) {
      const res = await handOff(rig, session, authority(rig, 'app.test'), back);
      assert.equal(res.status, 400, back);
      assert.equal(res.json?.error?.code, 'validation_failed');
    }
    assert.equal((await handOff(rig, session, authority(rig, 'open.test'), '/')).status, 404, 'a public route');
    assert.equal((await handOff(rig, session, authority(rig, 'typo.test'), '/')).status, 404, 'a route with a label mistake is not served');
    assert.equal((await handOff(rig, session, 'app.test:1', '/')).status, 400, 'not the edge port');
    const byToken = await hubRequest(rig.hub.url, rig.hub.caPem, '/api/v1/edge/hand-off', {
      method: 'POST',
      headers: { authorization: `Bearer ${rig.hub.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ host: 'app.test', return: '/' }),
    });
    assert.equal(byToken.status, 403);
    const crossSite = await hubRequest(rig.hub.url, rig.hub.caPem, '/api/v1/edge/hand-off', {
      method: 'POST',
      headers: { cookie: session, 'content-type': 'application/json' },
      body: JSON.stringify({ host: authority(rig, 'app.test'), return: '/' }),
    });
    assert.equal(crossSite.status, 403, 'a cookie without the UI header gets no code');
  });

  test('an unknown role in a label is listed with the route', async () => {
    const routes = await rig.hub.api('GET', '/api/v1/routes');
    const typo = (routes.json as Array<{ host: string; error: string | null }>).find((r) => r.host === 'typo.test');
    assert.match(typo?.error ?? '', /dockfleet\.ingress\.5\.access: "staff" is not/);
    assert.equal((await edgeGet(rig, 'typo.test', '/')).status, 404, 'and not served');
  });

  test("a code brought after its 30 s is refused; no code or cookie value appears in the hub's logs", async () => {
    assert.match(early.url, /code=/);
    await new Promise((r) => setTimeout(r, Math.max(0, early.at + 30_500 - Date.now())));
    const url = new URL(early.url);
    const late = await edgeGet(rig, 'app.test', url.pathname + url.search, HTML);
    assert.equal(late.status, 400);
    assert.equal(edgeCookieFrom(late.headers), null);
    const session = await hubSignIn(rig, 'vic');
    const cookie = await edgeSession(rig, session, 'app.test');
    await edgeGet(rig, 'app.test', '/', { cookie });
    const logs = rig.logs.join('');
    assert.ok(logs.length > 0);
    for (const secret of [url.searchParams.get('code')!, cookie.split('=')[1]!, session.split('=')[1]!]) assert.ok(!logs.includes(secret), 'a secret in the logs');
  });
});

test("--public-url: the hub as browsers reach it, for the edge's sign-in redirects — an https origin, nothing else", async () => {
  const { hubConfigFrom } = await import('../src/hub/config.ts');
  assert.equal(hubConfigFrom({}).publicUrl, null);
  assert.equal(hubConfigFrom({ 'public-url': 'https://Hub.Example.com:8443/' }).publicUrl, 'https://hub.example.com:8443');
  for (const bad of ['http://hub.example.com', 'https://hub.example.com/ui', 'https://u:p@hub.example.com', 'https://hub.example.com/?x=1', 'hub.example.com']) {
    assert.throws(() => hubConfigFrom({ 'public-url': bad }), /--public-url wants an https/, bad);
  }
});
