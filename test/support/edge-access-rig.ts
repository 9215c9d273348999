/** One node publishing routes that need a sign-in, for the edge access tests (HTTP and browser):
 * a private engine, an in-process hub with its edge port and a logger whose every line is kept
 * (so a test can look for a leaked code or cookie), a real agent, a busybox container whose CGI
 * prints the environment the app sees, and three users (a viewer, an operator, an admin). */
import { mkdtemp, rm } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { runContainer, startEngines, stopEngines, type TestEngine } from './engines.ts';
import { mintCode, startTestHub, waitFor, type TestHub } from './hub-fixture.ts';
import { hubRequest, type HubAnswer } from './hub-request.ts';
import { spawnDockfleet, type DockfleetProcess } from './processes.ts';

export const PASSWORD = 'a long enough passphrase';
export const USERS = { vic: 'viewer', opal: 'operator', ada: 'admin' } as const;
export type TestUser = keyof typeof USERS;

// busybox httpd: /cgi-bin/env prints what the app received; port 9000 answers any upgrade with 101 and echoes.
const SERVE = [
  'mkdir -p /www/cgi-bin',
  'echo hello-app > /www/index.html',
  'printf \'#!/bin/sh\\necho "Content-Type: text/plain\\r"\\necho "\\r"\\nenv\\n\' > /www/cgi-bin/env',
  'chmod +x /www/cgi-bin/env',
  'printf \'#!/bin/sh\\necho "HTTP/1.1 101 Switching Protocols\\r"\\necho "Upgrade: websocket\\r"\\necho "Connection: Upgrade\\r"\\necho "\\r"\\nexec cat\\n\' > /ws.sh',
  'chmod +x /ws.sh',
  '( nc -ll -p 9000 -e /ws.sh & )',
  'exec httpd -f -p 8080 -h /www',
].join(' && ');

/** app.test and app2.test: any user; ops.test: operator or admin; ws.test: WebSocket, any user; open.test: public; typo.test: an unknown role. */
export const LABELS: Record<string, string> = {
  'dockfleet.ingress.host': 'app.test',
  'dockfleet.ingress.port': '8080',
  'dockfleet.ingress.access': 'users',
  'dockfleet.ingress.1.host': 'app2.test',
  'dockfleet.ingress.1.port': '8080',
  'dockfleet.ingress.1.access': 'users',
  'dockfleet.ingress.2.host': 'ops.test',
  'dockfleet.ingress.2.port': '8080',
  'dockfleet.ingress.2.access': 'operator',
  'dockfleet.ingress.3.host': 'ws.test',
  'dockfleet.ingress.3.port': '9000',
  'dockfleet.ingress.3.access': 'users',
  'dockfleet.ingress.4.host': 'open.test',
  'dockfleet.ingress.4.port': '8080',
  'dockfleet.ingress.5.host': 'typo.test',
  'dockfleet.ingress.5.port': '8080',
  'dockfleet.ingress.5.access': 'staff',
};

export interface EdgeAccessRig {
  engine: TestEngine;
  hub: TestHub;
  agent: DockfleetProcess;
  dir: string;
  edgePort: number;
  /** Every line the hub logged, as written. */
  logs: string[];
}

export interface EdgeAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

export async function startEdgeAccessRig(prefix: string): Promise<EdgeAccessRig> {
  const rig: Partial<EdgeAccessRig> = { logs: [] };
  try {
    [rig.engine] = (await startEngines(1, { prefix })) as [TestEngine];
    rig.dir = await mkdtemp(join(tmpdir(), `dockfleet-${prefix}-`));
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        rig.logs!.push(chunk.toString());
        done();
      },
    });
    rig.hub = await startTestHub({ dataDir: join(rig.dir, 'hub'), edgeListen: '127.0.0.1:0', log: pino({ level: 'debug' }, sink) });
    if (!rig.hub.edgePort) throw new Error('the hub opened no edge port');
    rig.edgePort = rig.hub.edgePort;
    rig.agent = spawnDockfleet([
      'agent',
      '--hub',
      rig.hub.url,
      '--code',
      await mintCode(rig.hub, 'app-host'),
      '--state',
      join(rig.dir, 'agent'),
      '--docker',
      rig.engine.dockerHost,
      '--policy',
      join(rig.dir, 'no-policy.json'),
    ]);
    await rig.agent.waitForLine(/agent app-host connected/);
    for (const [name, role] of Object.entries(USERS)) {
      const made = await rig.hub.api('POST', '/api/v1/users', { name, role, password: PASSWORD });
      if (made.status !== 201) throw new Error(`user ${name}: ${JSON.stringify(made.json)}`);
    }
    await runContainer(rig.engine, {
      name: 'app',
      cmd: ['sh', '-c', SERVE],
      labels: LABELS,
      config: { ExposedPorts: { '8080/tcp': {}, '9000/tcp': {} } },
    });
    const done = rig as EdgeAccessRig;
    await waitFor(async () => (await edgeGet(done, 'open.test', '/').catch(() => null))?.status === 200, 20_000, 'the public route to serve');
    return done;
  } catch (err) {
    await stopEdgeAccessRig(rig);
    throw err;
  }
}

export async function stopEdgeAccessRig(rig: Partial<EdgeAccessRig>): Promise<void> {
  await rig.agent?.stop();
  await rig.hub?.stop({ keepData: true });
  if (rig.engine) await stopEngines([rig.engine]);
  if (rig.dir) await rm(rig.dir, { recursive: true, force: true });
}

/** The Host a browser sends for `host` on the edge port. */
export function authority(rig: EdgeAccessRig, host: string): string {
  return `${host}:${rig.edgePort}`;
}

/** One request to the edge port as a client of `host` would send it. */
export function edgeGet(rig: EdgeAccessRig, host: string, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<EdgeAnswer> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port: rig.edgePort,
        servername: host,
        path,
        method,
        headers: { host: authority(rig, host), ...headers },
        ca: rig.hub.caPem,
        checkServerIdentity: () => undefined,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error(`${method} ${host}${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** Signs `user` in at the hub as the UI does; the `df_session=…` pair. */
export async function hubSignIn(rig: EdgeAccessRig, user: TestUser): Promise<string> {
  const res = await hubRequest(rig.hub.url, rig.hub.caPem, '/api/v1/session', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: user, password: PASSWORD }),
  });
  const cookie = [res.headers['set-cookie'] ?? []].flat().find((c) => c.startsWith('df_session='));
  if (res.status !== 200 || !cookie) throw new Error(`sign-in of ${user}: ${res.status} ${res.text}`);
  return cookie.split(';')[0]!;
}

/** The hub page's request for a code: POST /api/v1/edge/hand-off with the session cookie. */
export function handOff(rig: EdgeAccessRig, session: string, host: string, returnTo: string): Promise<HubAnswer> {
  return hubRequest(rig.hub.url, rig.hub.caPem, '/api/v1/edge/hand-off', {
    method: 'POST',
    headers: { cookie: session, 'x-dockfleet-ui': '1', 'content-type': 'application/json' },
    body: JSON.stringify({ host, return: returnTo }),
  });
}

/** The `df_edge=…` pair a Set-Cookie list sets, if any. */
export function edgeCookieFrom(headers: EdgeAnswer['headers']): string | null {
  const set = [headers['set-cookie'] ?? []].flat().find((c) => c.startsWith('df_edge=') && !/Max-Age=0/i.test(c));
  return set ? set.split(';')[0]! : null;
}

/** The whole hand-off for `user` on `host`: sign in at the hub, get a code, visit the callback; the edge cookie. */
export async function edgeSession(rig: EdgeAccessRig, session: string, host: string, returnTo = '/'): Promise<string> {
  const code = await handOff(rig, session, authority(rig, host), returnTo);
  if (code.status !== 200) throw new Error(`hand-off for ${host}: ${code.status} ${code.text}`);
  const url = new URL(code.json.url as string);
  const back = await edgeGet(rig, host, url.pathname + url.search);
  const cookie = edgeCookieFrom(back.headers);
  if (back.status !== 302 || !cookie) throw new Error(`callback on ${host}: ${back.status} ${back.text}`);
  return cookie;
}

/** What an admin would do with a user (the hub has no API for it yet): straight in the hub's database. */
export function changeUser(rig: EdgeAccessRig, name: TestUser, change: { role?: string; disabled?: boolean }): void {
  const db = new Database(join(rig.hub.dataDir, 'dockfleet.db'));
  try {
    db.pragma('busy_timeout = 5000');
    if (change.role) db.prepare('UPDATE users SET role = ? WHERE name = ?').run(change.role, name);
    if (change.disabled !== undefined) db.prepare('UPDATE users SET disabled_at = ? WHERE name = ?').run(change.disabled ? Date.now() : null, name);
  } finally {
    db.close();
  }
}
