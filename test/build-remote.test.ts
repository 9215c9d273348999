/** Remote build contexts (`POST /build?remote=…`) make the engine fetch a URL from the host's
 * own network. The host policy refuses them unless allowed, and even then never from the
 * host's loopback, link-local or own addresses, however the host is spelled. Through the
 * hub, against a real engine and a real HTTP server on the host's loopback. */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { forbiddenAddress, remoteTarget } from '../src/agent/policy/remote-context.ts';
import { startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { mintCode, startTestHub, type TestHub } from './support/hub-fixture.ts';
import { startTestAgent, type TestAgent } from './support/agent-fixture.ts';

let engine: TestEngine;
let hub: TestHub;
let work: string;
let server: Server;
let port: number;
let fetched = 0;
const agents: TestAgent[] = [];

before(async () => {
  engine = (await startEngines(1, { prefix: 'remote', importImage: false }))[0]!;
  work = await mkdtemp(join(tmpdir(), 'dockfleet-remote-'));
  hub = await startTestHub();
  server = createServer((_req, res) => {
    fetched++;
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('FROM scratch\nLABEL secret="only-on-this-host-loopback"\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
  const allowing = join(work, 'allow-remote.json');
  await writeFile(allowing, JSON.stringify({ allow: { remoteBuildContexts: true } }));
  for (const [name, policy] of [
    ['rb-default', undefined],
    ['rb-allowed', allowing],
  ] as const) {
    const agent = await startTestAgent({ hubUrl: hub.url, code: await mintCode(hub, name), docker: engine.dockerHost, ...(policy ? { policy } : {}) });
    await agent.waitConnected();
    agents.push(agent);
  }
});

after(async () => {
  for (const a of agents) await a.stop();
  await hub?.stop();
  server?.close();
  if (engine) await stopEngines([engine]);
  await rm(work, { recursive: true, force: true });
});

function build(node: string, remote: string): Promise<{ status: number; json: any }> {
  return hub.api('POST', `/docker/nodes/${node}/v1.41/build?t=fetched&remote=${encodeURIComponent(remote)}`);
}

describe('through the hub', () => {
  test('a remote context on the host loopback is refused by the default policy, and nothing is fetched', async () => {
    const res = await build('rb-default', `http://127.0.0.1:${port}/Dockerfile`);
    assert.equal(res.status, 403, JSON.stringify(res.json));
    assert.match(String(res.json.message), /context the engine fetches itself.*allow\.remoteBuildContexts is false/);
    assert.equal(fetched, 0);
  });
  for (const spelled of ['127.0.0.1', 'localhost', '[::1]', '2130706433', '0x7f.1', '0177.0.0.1', '[::ffff:127.0.0.1]', '169.254.169.254']) {
    test(`with allow.remoteBuildContexts, http://${spelled}:PORT/ is still refused`, async () => {
      const res = await build('rb-allowed', `http://${spelled}:${port}/Dockerfile`);
      assert.equal(res.status, 403, JSON.stringify(res.json));
      assert.match(String(res.json.message), /^dockfleet policy on this host refuses a build context from .*(loopback|link-local|spelled unusually)/);
      assert.equal(fetched, 0, 'the engine never fetched from the host loopback');
    });
  }
  test('git remotes and unknown schemes are refused too', async () => {
    for (const remote of [
      `git://127.0.0.1:${port}/repo.git`,
      'git@127.0.0.1:repo.git',
      `http://127.0.0.1:${port}/repo.git#main`,
      'ssh://git@localhost/repo.git',
      `http://user:tok@127.0.0.1:${port}/x`,
    ]) {
      const res = await build('rb-allowed', remote);
      assert.equal(res.status, 403, `${remote}: ${JSON.stringify(res.json)}`);
      assert.ok(!String(res.json.message).includes('tok@'), 'a token in the URL is not repeated');
    }
    assert.equal(fetched, 0);
  });
  test('a build whose context is sent by the client still works', async () => {
    const res = await hub.api('POST', '/docker/nodes/rb-default/v1.41/build?t=plain', undefined);
    // No body: the engine itself answers (it needs a context), not the policy.
    assert.notEqual(res.status, 403, JSON.stringify(res.json));
  });
});

describe('addresses and spellings (pure)', () => {
  const own = new Set(['192.0.2.7', 'fd00::7']);
  for (const [address, why] of [
    ['127.0.0.1', /loopback/],
    ['127.9.9.9', /loopback/],
    ['::1', /loopback/],
    ['::ffff:127.0.0.1', /loopback/],
    ['::ffff:7f00:1', /loopback/],
    ['0.0.0.0', /unspecified/],
    ['::', /unspecified/],
    ['169.254.169.254', /link-local/],
    ['fe80::1', /link-local/],
    ['192.0.2.7', /own addresses/],
    ['::ffff:192.0.2.7', /own addresses/],
    ['fd00:0::7', /own addresses/],
    ['64:ff9b::7f00:1', /loopback/],
  ] as const) {
    test(`${address} is refused`, () => assert.match(forbiddenAddress(address, own) ?? '', why));
  }
  for (const address of ['8.8.8.8', '10.0.0.5', '2001:db8::1']) test(`${address} passes`, () => assert.equal(forbiddenAddress(address, own), null));
  test('hosts are read from every form the engine fetches, and odd spellings are refused', () => {
    assert.deepEqual(remoteTarget('https://example.com/app.tar.gz'), { host: 'example.com', spelled: 'https://example.com/app.tar.gz' });
    assert.deepEqual(remoteTarget('git@example.com:team/app.git'), { host: 'example.com', spelled: 'git@example.com:team/app.git' });
    assert.deepEqual(remoteTarget('github.com/team/app'), { host: 'github.com', spelled: 'github.com/team/app' });
    for (const odd of ['http://2130706433/', 'http://0x7f.1/', 'http://127.1/', 'http://ex%61mple.com/', 'http://evil.com\\@127.0.0.1/', 'ftp://example.com/x', 'http://a@b/']) {
      assert.equal(typeof remoteTarget(odd), 'string', odd);
    }
  });
});
