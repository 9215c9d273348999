/** Replacing a service that serves traffic, against a real private engine: a service that
 * publishes an ephemeral host port runs its new copy beside the old one (start-first), so a
 * client of the old copy sees no error through a whole failing deploy and its rollback; a
 * service on a fixed host port must stop first, and a failed deploy brings the old container
 * back serving (the gap is measured). */
import assert from 'node:assert/strict';
import http from 'node:http';
import { createServer } from 'node:net';
import { after, before, test } from 'node:test';
import { startStackRig, type StackRig } from './support/stack-rig.ts';
import { project, revision, service, shellCheck } from './support/stack-project.ts';
import type { StackService } from '../src/protocol/stacks.ts';

let rig: StackRig;

before(async () => {
  rig = await startStackRig('stackstartfirst');
});
after(async () => {
  await rig?.close();
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** busybox httpd serving "revN" on 8080, healthy when it answers. */
function web(n: number, published: number | null, over: Partial<StackService> = {}): StackService {
  return service({
    command: ['sh', '-c', `mkdir -p /www && echo rev${n} > /www/index.html && exec httpd -f -p 8080 -h /www`],
    ports: [{ target: 8080, published, hostIp: '127.0.0.1', protocol: 'tcp' }],
    healthcheck: shellCheck('wget -q -O- http://127.0.0.1:8080/ >/dev/null'),
    ...over,
  });
}

function get(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 1_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => (res.statusCode === 200 ? resolve(body.trim()) : reject(new Error(`HTTP ${res.statusCode}`))));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** Requests `port` every 100 ms until stopped: every answer, error and the longest run of errors. */
function poll(port: number) {
  const answers: string[] = [];
  const errors: string[] = [];
  let firstError = 0;
  let longestGapMs = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const t = Date.now();
      try {
        answers.push(await get(port));
        if (firstError) longestGapMs = Math.max(longestGapMs, Date.now() - firstError);
        firstError = 0;
      } catch (err) {
        errors.push((err as Error).message);
        if (!firstError) firstError = t;
      }
      await new Promise((r) => setTimeout(r, Math.max(0, 100 - (Date.now() - t))));
    }
  })();
  return {
    answers,
    errors,
    async stop() {
      stopped = true;
      await loop;
      return { answers, errors, longestGapMs: firstError ? Infinity : longestGapMs };
    },
  };
}

async function publishedPort(container: string): Promise<number> {
  const info = await rig.stackEngine.inspect('containers', container);
  return Number(info?.NetworkSettings?.Ports?.['8080/tcp']?.[0]?.HostPort);
}

test('a service on an ephemeral host port is replaced start-first: its client sees no error through a failing deploy and its rollback', async () => {
  const { result } = await rig.run('deploy', 'site', revision(project('site', { web: web(1, null) }), 1, { stableMs: 500 }));
  assert.equal(result.state, 'succeeded', result.error ?? '');
  const port = await publishedPort('site_web_1');
  assert.ok(port > 0, 'revision 1 publishes a host port');
  assert.equal(await get(port), 'rev1');

  const client = poll(port);
  await new Promise((r) => setTimeout(r, 500));
  const bad = project('site', { web: web(2, null, { healthcheck: shellCheck('test -f /never', 1) }) });
  const { result: failed, steps } = await rig.run('deploy', 'site', revision(bad, 2, { stableMs: 500, deadlineMs: 4_000 }));
  await new Promise((r) => setTimeout(r, 500));
  const seen = await client.stop();

  assert.equal(failed.state, 'failed');
  assert.equal(failed.rolledBack, true);
  assert.ok(steps.includes('service web: start-first'), steps.join(', '));
  assert.deepEqual(seen.errors, [], 'no request to the old revision failed');
  assert.ok(seen.answers.length >= 10, `only ${seen.answers.length} answers`);
  assert.ok(
    seen.answers.every((a) => a === 'rev1'),
    'every answer came from revision 1',
  );
  assert.deepEqual(Object.keys(await rig.containers('site')), ['site_web_1']);
  assert.equal(await publishedPort('site_web_1'), port);
});

test('a service on a fixed host port is replaced stop-first, and a failed deploy brings the old container back serving', async (t) => {
  const port = await freePort();
  const { result } = await rig.run('deploy', 'fixed', revision(project('fixed', { web: web(1, port) }), 1, { stableMs: 500 }));
  assert.equal(result.state, 'succeeded', result.error ?? '');
  assert.equal(await get(port), 'rev1');

  const client = poll(port);
  await new Promise((r) => setTimeout(r, 300));
  // Revision 2 holds the port but never serves: only revision 1 ever answers.
  const bad = project('fixed', { web: web(2, port, { command: ['sleep', '3600'], healthcheck: shellCheck('test -f /never', 1) }) });
  const t0 = Date.now();
  const { result: failed, steps } = await rig.run('deploy', 'fixed', revision(bad, 2, { stableMs: 500, deadlineMs: 4_000 }));
  const jobMs = Date.now() - t0;
  const deadline = Date.now() + 10_000;
  while (client.answers.length === 0 || client.errors.length === 0 || (await get(port).catch(() => '')) !== 'rev1') {
    assert.ok(Date.now() < deadline, 'the old container never served again');
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 300));
  const seen = await client.stop();

  assert.equal(failed.state, 'failed');
  assert.equal(failed.rolledBack, true);
  assert.ok(steps.includes('service web: stop-first'), steps.join(', '));
  assert.ok(seen.errors.length > 0, 'stop-first leaves a gap');
  assert.ok(Number.isFinite(seen.longestGapMs), 'revision 1 serves again');
  assert.ok(
    seen.answers.every((a) => a === 'rev1'),
    'every answer came from revision 1',
  );
  assert.deepEqual(Object.keys(await rig.containers('fixed')), ['fixed_web_1']);
  t.diagnostic(`stop-first failing deploy: job ${jobMs} ms, gap in service ${seen.longestGapMs} ms (gate deadline 4000 ms)`);
});
