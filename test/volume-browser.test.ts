/** The volume file browser end to end: hub REST → agent → a real engine's volume on disk.
 * Normal operations work; every path escape is refused at the agent whatever the hub lets
 * through; the host's policy keeps it off by default; viewers may look but not touch. */
import assert from 'node:assert/strict';
import https from 'node:https';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { engineRequest, runContainer, startEngines, stopEngines, waitContainer, type TestEngine } from './support/engines.ts';
import { mintCode, startTestHub, type TestHub } from './support/hub-fixture.ts';
import { startTestAgent, type TestAgent } from './support/agent-fixture.ts';

let engines: TestEngine[];
let hub: TestHub;
let work: string;
const agents: TestAgent[] = [];
let viewerToken: string;

function call(method: string, path: string, opts: { body?: Buffer | string; token?: string } = {}): Promise<{ status: number; text: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const body = typeof opts.body === 'string' ? Buffer.from(opts.body) : opts.body;
    const req = https.request(
      new URL(path, hub.url),
      {
        method,
        ca: hub.caPem,
        agent: false,
        headers: { authorization: `Bearer ${opts.token ?? hub.token}`, ...(body ? { 'content-length': body.length, 'content-type': 'application/octet-stream' } : {}) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), headers: res.headers }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
const files = (node: string, query: string) => `/api/v1/nodes/${node}/volumes/data/files?${query}`;

before(async () => {
  engines = await startEngines(2, { prefix: 'vol' });
  work = await mkdtemp(join(tmpdir(), 'dockfleet-vol-'));
  hub = await startTestHub();
  const open = join(work, 'policy.json');
  const on = ['ping', 'version', 'info', 'events', 'system', 'containers', 'exec', 'images', 'volumes', 'networks', 'volumeFiles'];
  await writeFile(open, JSON.stringify({ sections: Object.fromEntries(on.map((s) => [s, true])) }));
  for (const [i, engine] of engines.entries()) {
    // A volume with a file, a directory, and a symlink pointing out of the volume.
    await engineRequest(engine.socketPath, 'POST', '/volumes/create', { Name: 'data' });
    const id = await runContainer(engine, {
      cmd: ['sh', '-c', 'echo hello > /v/hello.txt && mkdir /v/sub && echo deep > /v/sub/deep.txt && ln -s /etc /v/etc-link && ln -s /etc/passwd /v/passwd-link'],
      hostConfig: { Binds: ['data:/v'] },
    });
    await waitContainer(engine, id);
    const agent = await startTestAgent({ hubUrl: hub.url, code: await mintCode(hub, `vol-${i}`), docker: engine.dockerHost, ...(i === 0 ? { policy: open } : {}) });
    await agent.waitConnected();
    agents.push(agent);
  }
  viewerToken = (await hub.api('POST', '/api/v1/users', { name: 'viv', role: 'viewer' })).json.token;
});

after(async () => {
  for (const a of agents) await a.stop();
  await hub.stop();
  await stopEngines(engines);
  await rm(work, { recursive: true, force: true });
});

test('list, download, upload, mkdir, rename and delete inside a volume', async () => {
  const root = JSON.parse((await call('GET', files('vol-0', 'path='))).text);
  assert.deepEqual(root.entries.map((e: { name: string; type: string }) => `${e.type}:${e.name}`).sort(), ['dir:sub', 'file:hello.txt', 'symlink:etc-link', 'symlink:passwd-link']);
  const download = await call('GET', files('vol-0', 'path=hello.txt&download=1'));
  assert.equal(download.status, 200);
  assert.equal(download.text, 'hello\n');
  assert.match(String(download.headers['content-disposition']), /attachment; filename="hello.txt"/);
  const payload = Buffer.alloc(3 * 1024 * 1024, 0x5a);
  assert.equal((await call('PUT', files('vol-0', 'path=sub/upload.bin'), { body: payload })).status, 201);
  assert.equal((await call('PUT', files('vol-0', 'path=sub/upload.bin'), { body: 'x' })).status, 409, 'no silent overwrite');
  assert.equal((await call('GET', files('vol-0', 'path=sub/upload.bin&download=1'))).text.length, payload.length);
  assert.equal((await call('POST', files('vol-0', 'path=newdir'), { body: JSON.stringify({ op: 'mkdir' }) })).status, 201);
  assert.equal((await call('POST', files('vol-0', 'path=sub/upload.bin'), { body: JSON.stringify({ op: 'rename', to: 'newdir/moved.bin' }) })).status, 200);
  assert.equal((await call('DELETE', files('vol-0', 'path=newdir&recursive=1'))).status, 200);
  // What the engine sees in the volume agrees.
  const check = await runContainer(engines[0]!, { cmd: ['sh', '-c', 'ls /v'], hostConfig: { Binds: ['data:/v'] } });
  await waitContainer(engines[0]!, check);
  const logs = await engineRequest(engines[0]!.socketPath, 'GET', `/containers/${check}/logs?stdout=1`);
  assert.doesNotMatch(logs.text, /newdir/);
  assert.match(logs.text, /hello\.txt/);
});

test('every path escape is refused: dot-dot, encoded, absolute, NUL, symlinks out of the volume', async () => {
  const attempts: Array<[string, string, string?]> = [
    ['GET', 'path=..'],
    ['GET', 'path=../..'],
    ['GET', 'path=sub/../../x'],
    ['GET', 'path=..%2F..%2Fetc'],
    ['GET', 'path=%2Fetc%2Fpasswd&download=1'],
    ['GET', 'path=/etc'],
    ['GET', 'path=a%00b'],
    ['GET', 'path=etc-link'],
    ['GET', 'path=etc-link/passwd&download=1'],
    ['GET', 'path=passwd-link&download=1'],
    ['PUT', 'path=etc-link/evil', 'x'],
    ['PUT', 'path=../evil', 'x'],
    ['POST', 'path=hello.txt', JSON.stringify({ op: 'rename', to: '../../hello.txt' })],
    ['POST', 'path=hello.txt', JSON.stringify({ op: 'rename', to: 'etc-link/hello.txt' })],
    ['DELETE', 'path=..&recursive=1'],
    ['DELETE', 'path=&recursive=1'],
  ];
  for (const [method, query, body] of attempts) {
    const res = await call(method, files('vol-0', query), body === undefined ? {} : { body });
    assert.ok(res.status === 403 || res.status === 400, `${method} ${query} answered ${res.status}: ${res.text}`);
    assert.doesNotMatch(res.text, /root:x:0:0/, 'no host file content leaks');
  }
  // Encoded dots decoded once are a plain (missing) name, not a parent directory.
  assert.equal((await call('GET', files('vol-0', 'path=%252e%252e'))).status, 404);
  // The symlinks themselves are intact and the host's /etc untouched.
  const root = JSON.parse((await call('GET', files('vol-0', 'path='))).text);
  assert.ok(root.entries.some((e: { name: string }) => e.name === 'etc-link'));
});

test('the host policy keeps the browser off by default, with a clear message', async () => {
  const res = await call('GET', files('vol-1', 'path='));
  assert.equal(res.status, 403);
  assert.match(res.text, /dockfleet policy on this host refuses browsing or changing files inside volumes/);
});

test('viewers may list and download but not change files', async () => {
  assert.equal((await call('GET', files('vol-0', 'path='), { token: viewerToken })).status, 200);
  const upload = await call('PUT', files('vol-0', 'path=nope.txt'), { body: 'x', token: viewerToken });
  assert.equal(upload.status, 403);
  assert.match(upload.text, /viewer/);
  const audit = await hub.api('GET', '/api/v1/audit?node=vol-0&limit=100');
  assert.ok(audit.json.some((e: { path: string; method: string }) => e.method === 'PUT' && /files\?path=sub\/upload\.bin/.test(e.path)));
});
