// The engine harness itself: real private dockerds, isolated from each other,
// surviving restarts, and leaving nothing behind.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { BUSYBOX_IMAGE, containerLogs, engineRequest, runContainer, startEngines, stopEngines, waitContainer, type TestEngine } from './support/engines.ts';

let engines: TestEngine[] = [];

before(async () => {
  const t0 = performance.now();
  engines = await startEngines(2, { prefix: 'harness' });
  console.log(`startEngines(2) took ${Math.round(performance.now() - t0)} ms`);
});

after(async () => {
  await stopEngines(engines);
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.setTimeout(2_000, () => req.destroy(new Error('timeout')));
  });
}

function pidsReferencing(dir: string): number[] {
  const pids: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (fs.readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(`${dir}/`)) pids.push(Number(e));
    } catch {
      /* gone */
    }
  }
  return pids;
}

test('engines are distinct and answer /_ping and /version', async () => {
  assert.equal(engines.length, 2);
  assert.deepEqual(
    engines.map((e) => e.name),
    ['harness-0', 'harness-1'],
  );
  assert.notEqual(engines[0]!.socketPath, engines[1]!.socketPath);
  assert.notEqual(engines[0]!.bridge, engines[1]!.bridge);
  for (const e of engines) {
    assert.ok(e.socketPath.length < 100, e.socketPath);
    assert.equal(e.dockerHost, `unix://${e.socketPath}`);
    assert.ok(e.running);
    const ping = await engineRequest(e.socketPath, 'GET', '/_ping');
    assert.equal(ping.status, 200);
    assert.equal(ping.text, 'OK');
    const version = await engineRequest(e.socketPath, 'GET', '/version');
    assert.equal(version.status, 200);
    assert.match(String(version.json.ApiVersion), /^1\.\d+$/);
    const info = await engineRequest(e.socketPath, 'GET', '/info');
    assert.equal(info.json.Driver, 'vfs');
    assert.equal(info.json.DockerRootDir, e.dataRoot);
  }
});

test('the busybox image is on each engine and has its applets', async () => {
  const applets = ['sh', 'sleep', 'echo', 'cat', 'ls', 'ps', 'top', 'env', 'id', 'true', 'false', 'yes', 'head', 'wc', 'dd', 'sha256sum', 'mkdir', 'rm', 'date', 'hostname', 'seq', 'grep', 'tail'];
  for (const e of engines) {
    const img = await engineRequest(e.socketPath, 'GET', `/images/${BUSYBOX_IMAGE}/json`);
    assert.equal(img.status, 200, img.text);
    assert.deepEqual(img.json.RepoTags, [BUSYBOX_IMAGE]);
    const id = await runContainer(e, {
      cmd: ['sh', '-c', `for a in ${applets.join(' ')}; do [ -x /bin/$a ] || { echo missing $a; exit 1; }; done; seq 3 | wc -l; test -d /tmp && test -d /etc && echo ok`],
    });
    assert.equal(await waitContainer(e, id), 0, await containerLogs(e, id));
    assert.equal(await containerLogs(e, id), '3\nok\n');
  }
});

test('a container run on engine A does not appear on engine B', async () => {
  const [a, b] = engines as [TestEngine, TestEngine];
  const id = await runContainer(a, { name: 'only-on-a', labels: { 'dockfleet.test': 'isolation' } });
  const filters = encodeURIComponent(JSON.stringify({ label: ['dockfleet.test=isolation'] }));
  const onA = await engineRequest(a.socketPath, 'GET', `/containers/json?filters=${filters}`);
  const onB = await engineRequest(b.socketPath, 'GET', `/containers/json?all=1&filters=${filters}`);
  assert.deepEqual(
    onA.json.map((c: { Id: string }) => c.Id),
    [id],
  );
  assert.deepEqual(onB.json, []);
  assert.equal((await engineRequest(b.socketPath, 'GET', `/containers/${id}/json`)).status, 404);
  assert.equal((await engineRequest(b.socketPath, 'GET', '/containers/only-on-a/json')).status, 404);
});

test('a port published on 127.0.0.1 is reachable (userland proxy)', async () => {
  const [a] = engines as [TestEngine];
  const port = await freePort();
  await runContainer(a, {
    cmd: ['sh', '-c', 'mkdir -p /www && echo hello-from-busybox > /www/index.html && exec httpd -f -p 8080 -h /www'],
    config: { ExposedPorts: { '8080/tcp': {} } },
    hostConfig: { PortBindings: { '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: String(port) }] } },
  });
  let last: unknown;
  for (let i = 0; i < 100; i++) {
    try {
      const r = await httpGet(`http://127.0.0.1:${port}/`);
      if (r.status === 200) {
        assert.equal(r.body, 'hello-from-busybox\n');
        return;
      }
      last = r.status;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`published port never answered: ${String(last)}`);
});

test('restart() keeps containers and images', async () => {
  const [a] = engines as [TestEngine];
  const id = await runContainer(a, { name: 'survivor', labels: { keep: 'yes' } });
  const oldPid = a.pid;
  const t0 = performance.now();
  await a.restart();
  console.log(`restart() took ${Math.round(performance.now() - t0)} ms`);
  assert.notEqual(a.pid, oldPid);
  assert.ok(a.running);
  const c = await engineRequest(a.socketPath, 'GET', '/containers/survivor/json');
  assert.equal(c.status, 200);
  assert.equal(c.json.Id, id);
  assert.equal(c.json.Config.Labels.keep, 'yes');
  assert.equal((await engineRequest(a.socketPath, 'GET', `/images/${BUSYBOX_IMAGE}/json`)).status, 200);
  // And it still runs things.
  const started = await engineRequest(a.socketPath, 'POST', `/containers/${id}/start`);
  assert.equal(started.status, 204, started.text);
});

test('kill() takes the engine away until start(); a crash (SIGKILL) is recoverable too', async () => {
  const [, b] = engines as [TestEngine, TestEngine];
  const id = await runContainer(b, { name: 'through-a-crash' });
  await b.kill();
  assert.equal(b.running, false);
  await assert.rejects(engineRequest(b.socketPath, 'GET', '/_ping', undefined, { timeoutMs: 1_000 }));
  await b.start();
  assert.equal((await engineRequest(b.socketPath, 'GET', '/_ping')).text, 'OK');
  assert.equal((await engineRequest(b.socketPath, 'POST', `/containers/${id}/start`)).status, 204);

  // Crash: dockerd dies at once; the container's shim outlives it until the next start/stop.
  const crashedPid = b.pid;
  await b.kill({ signal: 'SIGKILL' });
  assert.equal(b.running, false);
  assert.throws(() => process.kill(crashedPid, 0));
  assert.ok(pidsReferencing(b.dir).length > 0, 'expected the orphaned shim to still be running');
  await b.start();
  const c = await engineRequest(b.socketPath, 'GET', `/containers/${id}/json`);
  assert.equal(c.status, 200);
  // Leave it running with an orphaned shim again, for stop() to clean up.
  assert.equal((await engineRequest(b.socketPath, 'POST', `/containers/${id}/start`)).status, 204);
  await b.kill({ signal: 'SIGKILL' });
});

test('stop() leaves no process, bridge, mount or directory behind', async () => {
  const snapshot = engines.map((e) => ({ pid: e.pid, dir: e.dir, bridge: e.bridge, name: e.name }));
  const t0 = performance.now();
  await stopEngines(engines);
  console.log(`stopEngines(2) took ${Math.round(performance.now() - t0)} ms`);
  const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  for (const s of snapshot) {
    assert.throws(() => process.kill(s.pid, 0), `${s.name}: dockerd ${s.pid} still alive`);
    assert.deepEqual(pidsReferencing(s.dir), [], `${s.name}: processes still reference ${s.dir}`);
    assert.equal(fs.existsSync(`/sys/class/net/${s.bridge}`), false, `${s.name}: bridge ${s.bridge} still there`);
    assert.equal(mounts.includes(s.dir), false, `${s.name}: mounts left under ${s.dir}`);
    assert.equal(fs.existsSync(s.dir), false, `${s.name}: ${s.dir} still there`);
  }
  // stop() is idempotent.
  await stopEngines(engines);
});
