/** Registry credentials: stored sealed at the hub, listed without their secret, and turned into
 * X-Registry-Auth for a pull through the hub's Docker endpoint, against a real private registry
 * (Debian's docker-registry with htpasswd auth on 127.0.0.1) and a real engine and agent. */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { dockerAuthHeader } from '../src/hub/registry-auth/registry-auth.ts';
import { BUSYBOX_IMAGE, engineRequest } from './support/engines.ts';
import { waitFor } from './support/hub-fixture.ts';
import { hubRequest } from './support/hub-request.ts';
import { startNodeRig, stopNodeRig, type NodeRig } from './support/node-rig.ts';
import { freePort } from './support/processes.ts';

const NODE = 'reg-01';
const USER = 'puller';
const PASSWORD = 'registry-secret-6f1d2c';
let rig: Partial<NodeRig> = {};
let registryProc: ChildProcess | null = null;
let server = '';
let image = '';

before(async () => {
  rig = await startNodeRig('regauth', NODE);
  const dir = rig.dir!;
  const port = await freePort();
  server = `127.0.0.1:${port}`;
  image = `${server}/test/busybox:1`;
  await writeFile(join(dir, 'htpasswd'), execFileSync('htpasswd', ['-Bbn', USER, PASSWORD]));
  await writeFile(
    join(dir, 'registry.yml'),
    [
      'version: 0.1',
      'log:',
      '  level: error',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${join(dir, 'registry-data')}`,
      'http:',
      `  addr: ${server}`,
      'auth:',
      '  htpasswd:',
      '    realm: dockfleet-test',
      `    path: ${join(dir, 'htpasswd')}`,
      '',
    ].join('\n'),
  );
  registryProc = spawn('docker-registry', ['serve', join(dir, 'registry.yml')], { stdio: 'ignore' });
  await waitFor(async () => (await fetch(`http://${server}/v2/`).catch(() => null))?.status === 401, 15_000, 'the registry');
  // Put an image there straight from the engine, then forget it locally.
  const sock = rig.engine!.socketPath;
  const [repo, tag] = [image.slice(0, image.lastIndexOf(':')), '1'];
  assert.equal((await engineRequest(sock, 'POST', `/images/${encodeURIComponent(BUSYBOX_IMAGE)}/tag?repo=${encodeURIComponent(repo)}&tag=${tag}`)).status, 201);
  const auth = dockerAuthHeader({ username: USER, password: PASSWORD, serveraddress: server });
  const push = await engineRequest(sock, 'POST', `/images/${encodeURIComponent(repo)}/push?tag=${tag}`, undefined, { headers: { 'X-Registry-Auth': auth }, timeoutMs: 60_000 });
  assert.equal(push.status, 200);
  assert.doesNotMatch(push.text, /"error"/, push.text);
  assert.equal((await engineRequest(sock, 'DELETE', `/images/${encodeURIComponent(image)}`)).status, 200);
});

after(async () => {
  registryProc?.kill('SIGTERM');
  await stopNodeRig(rig);
});

const hub = () => rig.hub!;
const pull = (headers: Record<string, string> = {}) =>
  hubRequest(hub().url, hub().caPem, `/docker/nodes/${NODE}/images/create?fromImage=${encodeURIComponent(image)}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${hub().token}`, ...headers },
    timeoutMs: 60_000,
  });

test('an admin stores credentials; the API lists host and user, never the password, and the database holds it only sealed', async () => {
  const bad = await hub().api('POST', '/api/v1/registries', { server: 'not a host!', username: 'x', password: 'y' });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.code, 'validation_failed');
  const made = await hub().api('POST', '/api/v1/registries', { server, username: USER, password: PASSWORD });
  assert.equal(made.status, 201);
  assert.equal(made.json.server, server);
  assert.equal(JSON.stringify(made.json).includes(PASSWORD), false);
  const again = await hub().api('POST', '/api/v1/registries', { server, username: USER, password: PASSWORD });
  assert.equal(again.status, 409);
  const list = await hub().api('GET', '/api/v1/registries');
  assert.deepEqual(
    list.json.map((r: { server: string; username: string }) => [r.server, r.username]),
    [[server, USER]],
  );
  assert.equal(JSON.stringify(list.json).includes(PASSWORD), false);
  const dbFiles = (await readdir(rig.hubDir!)).filter((f) => f.startsWith('dockfleet.db'));
  assert.ok(dbFiles.length > 0);
  for (const f of dbFiles) {
    assert.equal((await readFile(join(rig.hubDir!, f))).includes(PASSWORD), false, `${f} holds the password in plaintext`);
  }
});

test('a pull without credentials is refused by the registry; naming the stored credentials pulls with live progress', async () => {
  const refused = await pull();
  assert.match(refused.text, /no basic auth credentials|unauthorized|authentication required/i);
  const id = (await hub().api('GET', '/api/v1/registries')).json[0].id as string;
  const ok = await pull({ 'x-dockfleet-registry': id, 'x-dockfleet-ui': '1' });
  assert.equal(ok.status, 200);
  const events = ok.text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { status?: string; error?: string; id?: string });
  assert.equal(
    events.some((e) => e.error),
    false,
    ok.text,
  );
  assert.ok(
    events.some((e) => /Pull complete|Already exists|Downloaded newer image/.test(e.status ?? '')),
    ok.text,
  );
  const present = await engineRequest(rig.engine!.socketPath, 'GET', `/images/${encodeURIComponent(image)}/json`);
  assert.equal(present.status, 200);
});

test('credentials are only sent to their own registry, only for a pull, and removing them stops their use', async () => {
  const id = (await hub().api('GET', '/api/v1/registries')).json[0].id as string;
  const elsewhere = await hubRequest(hub().url, hub().caPem, `/docker/nodes/${NODE}/images/create?fromImage=${encodeURIComponent('example.org/x/y:1')}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${hub().token}`, 'x-dockfleet-registry': id },
  });
  assert.equal(elsewhere.status, 400);
  assert.match(elsewhere.text, new RegExp(`for ${server.replace(/[.]/g, '\\.')}`));
  const notPull = await hubRequest(hub().url, hub().caPem, `/docker/nodes/${NODE}/containers/json`, {
    headers: { authorization: `Bearer ${hub().token}`, 'x-dockfleet-registry': id },
  });
  assert.equal(notPull.status, 400);
  assert.equal((await hub().api('DELETE', `/api/v1/registries/${id}`)).status, 200);
  assert.deepEqual((await hub().api('GET', '/api/v1/registries')).json, []);
  const gone = await pull({ 'x-dockfleet-registry': id });
  assert.equal(gone.status, 404);
});
