/** A soak of random engine changes (containers created, started, stopped, killed, renamed,
 * connected and removed; volumes, networks and images made and removed), several at a time;
 * now and then the hub is busy for 300 ms (it stops reading its links); at checkpoints and at the end the hub's four sections must equal the engine's. Bounded to
 * about 200 changes. The seed is printed, and DOCKFLEET_SOAK_SEED replays a run. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { engineRequest, runContainer, BUSYBOX_IMAGE, type TestEngine } from './support/engines.ts';
import type { TestHub } from './support/hub-fixture.ts';
import { importTinyImage, waitSectionsEqual } from './support/inventory-compare.ts';
import { startNodeRig, stopNodeRig, type NodeRig } from './support/node-rig.ts';

const NODE = 'soak-host';
const OPERATIONS = 200;
const WIDTH = 4;
const CHECK_EVERY = 20;
const LABEL = 'y'.repeat(8000);

let engine: TestEngine;
let hub: TestHub;
let rig: NodeRig | undefined;

/** A small deterministic generator (mulberry32), so a failing run can be replayed. */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

before(async () => {
  rig = await startNodeRig('soak', NODE);
  ({ engine, hub } = rig);
});

after(() => stopNodeRig({ ...rig }));

test('after ~200 random changes the hub shows exactly what the engine lists', { timeout: 150_000 }, async (t) => {
  const seed = Number(process.env.DOCKFLEET_SOAK_SEED ?? Math.floor(Math.random() * 2 ** 31));
  t.diagnostic(`seed ${seed}`);
  const random = generator(seed);
  const pick = <T>(list: readonly T[]): T | undefined => list[Math.floor(random() * list.length)];
  const containers: string[] = [];
  const volumes: string[] = [];
  const networks: string[] = [];
  const images: string[] = [];
  let serial = 0;
  const sock = engine.socketPath;

  const createContainer = async (exitAtOnce: boolean, start: boolean): Promise<void> => {
    const name = `soak-c${serial++}`;
    containers.push(name);
    await runContainer(engine, { name, cmd: exitAtOnce ? ['true'] : ['sleep', '3600'], labels: { 'dockfleet.soak': LABEL }, start }).catch(() => {});
  };
  const createVolume = async (): Promise<void> => {
    const name = `soak-v${serial++}`;
    volumes.push(name);
    await engineRequest(sock, 'POST', '/volumes/create', { Name: name, Labels: { 'dockfleet.soak': LABEL } });
  };
  const createNetwork = async (): Promise<void> => {
    if (networks.length >= 6) return void (await engineRequest(sock, 'DELETE', `/networks/${networks.shift()}`));
    const name = `soak-n${serial++}`;
    networks.push(name);
    await engineRequest(sock, 'POST', '/networks/create', { Name: name, Labels: { 'dockfleet.soak': LABEL } });
  };
  const importImage = async (): Promise<void> => {
    const tag = `i${serial++}`;
    images.push(tag);
    await importTinyImage(engine, 'dockfleet-test/soak', tag, { 'dockfleet.soak': LABEL }).catch(() => {});
  };
  const operations: Array<[weight: number, run: () => Promise<unknown>]> = [
    // The hub busy for a moment (it runs in this process): it stops reading, the agent's writes back up.
    [
      2,
      async () => {
        await new Promise((r) => setTimeout(r, 5));
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
      },
    ],
    [4, () => createContainer(random() < 0.3, random() < 0.7)],
    [
      2,
      async () => {
        const c = pick(containers);
        if (c) await engineRequest(sock, 'POST', `/containers/${c}/start`);
      },
    ],
    [
      2,
      async () => {
        const c = pick(containers);
        if (c) await engineRequest(sock, 'POST', `/containers/${c}/stop?t=0`);
      },
    ],
    [
      1,
      async () => {
        const c = pick(containers);
        if (c) await engineRequest(sock, 'POST', `/containers/${c}/kill`);
      },
    ],
    [
      1,
      async () => {
        const c = pick(containers);
        if (c) await engineRequest(sock, 'POST', `/containers/${c}/restart?t=0`);
      },
    ],
    [
      2,
      async () => {
        const c = pick(containers);
        if (!c) return;
        containers.splice(containers.indexOf(c), 1);
        await engineRequest(sock, 'DELETE', `/containers/${c}?force=1`);
      },
    ],
    [
      1,
      async () => {
        const c = pick(containers);
        if (!c) return;
        const name = `soak-c${serial++}`;
        const res = await engineRequest(sock, 'POST', `/containers/${c}/rename?name=${name}`);
        if (res.status === 204) containers.splice(containers.indexOf(c), 1, name);
      },
    ],
    [2, createVolume],
    [
      1,
      async () => {
        const v = pick(volumes);
        if (!v) return;
        volumes.splice(volumes.indexOf(v), 1);
        await engineRequest(sock, 'DELETE', `/volumes/${v}?force=1`);
      },
    ],
    [1, createNetwork],
    [
      1,
      async () => {
        const n = pick(networks);
        if (!n) return;
        networks.splice(networks.indexOf(n), 1);
        await engineRequest(sock, 'DELETE', `/networks/${n}`);
      },
    ],
    [
      1,
      async () => {
        const n = pick(networks);
        const c = pick(containers);
        if (n && c) await engineRequest(sock, 'POST', `/networks/${n}/${random() < 0.6 ? 'connect' : 'disconnect'}`, { Container: c });
      },
    ],
    [2, importImage],
    [
      1,
      async () => {
        const tag = `t${serial++}`;
        images.push(tag);
        await engineRequest(sock, 'POST', `/images/${BUSYBOX_IMAGE}/tag?repo=dockfleet-test/soak&tag=${tag}`);
      },
    ],
    [
      1,
      async () => {
        const tag = pick(images);
        if (!tag) return;
        images.splice(images.indexOf(tag), 1);
        await engineRequest(sock, 'DELETE', `/images/dockfleet-test/soak:${tag}?force=1`);
      },
    ],
  ];
  const totalWeight = operations.reduce((sum, [w]) => sum + w, 0);
  const randomOperation = (): (() => Promise<unknown>) => {
    let r = random() * totalWeight;
    for (const [w, run] of operations) {
      if ((r -= w) < 0) return run;
    }
    return operations[0]![1];
  };

  const started = Date.now();
  let done = 0;
  const checkpoints: number[] = [];
  while (done < OPERATIONS) {
    const batch = Math.min(CHECK_EVERY, OPERATIONS - done);
    let issued = 0;
    await Promise.all(
      Array.from({ length: WIDTH }, async () => {
        while (issued < batch) {
          issued++;
          await randomOperation()();
        }
      }),
    );
    done += batch;
    // Then one change in every section at once while the hub is busy: the agent's writes back
    // up, and all four sections wait for the same drain.
    const burst = [createContainer(true, true), createVolume(), createNetwork(), importImage()];
    await new Promise((r) => setTimeout(r, 20));
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 600);
    await Promise.all(burst);
    // Every change is done: the hub must catch up at once, not at the next change or resync.
    checkpoints.push(await waitSectionsEqual(hub, NODE, engine, 3_000));
  }
  t.diagnostic(`${OPERATIONS} changes in ${Date.now() - started} ms; the hub caught up in ${checkpoints.join(', ')} ms`);
  assert.ok(containers.length + volumes.length + images.length > 0, 'the soak made something');
});
