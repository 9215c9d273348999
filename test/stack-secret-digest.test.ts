/** A revision's digest covers its secret values (equal intent, equal digest) through a keyed
 * hash under the hub's secrets.key: a copy of the database alone cannot test guesses of a weak
 * secret offline against the stored digest. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import { projectDigest } from '../src/hub/stacks/compose/parse-compose.ts';
import type { StackRevision } from '../src/protocol/stacks.ts';
import { mintCode, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import { startJobAgent, succeed, type JobAgent } from './support/job-agent.ts';

const COMPOSE = 'services:\n  db:\n    image: busybox:1.36\n    environment:\n      DB_PASSWORD: "${DB_PASSWORD}"\n';
const WEAK = 'hunter2';
const GUESSES = ['password', '123456', 'letmein', WEAK, 'qwerty'];

let hub: TestHub;
let agent: JobAgent;

before(async () => {
  hub = await startTestHub();
  agent = await startJobAgent({ hubUrl: hub.url, code: await mintCode(hub, 'd1'), answer: (job, res) => succeed(job, res) });
  await agent.waitConnected();
});
after(async () => {
  await agent?.stop();
  await hub?.stop();
});

async function deploy(secret: string): Promise<void> {
  const res = await hub.api('POST', '/api/v1/stacks/vault/deploy', { compose: COMPOSE, secretEnv: { DB_PASSWORD: secret }, target: { node: 'd1' } });
  assert.equal(res.status, 202, JSON.stringify(res.json));
  await waitFor(async () => (await hub.api('GET', `/api/v1/stacks/vault/rollouts/${res.json.rollout}`)).json.state === 'succeeded', 15_000, 'the rollout done');
}

/** What someone holding only the database file sees: each revision's target as stored. */
function storedTargets(): StackRevision[] {
  const db = new Database(join(hub.dataDir, 'dockfleet.db'), { readonly: true, fileMustExist: true });
  try {
    return (db.prepare("SELECT target_json FROM stack_revisions WHERE stack = 'vault' ORDER BY revision").all() as Array<{ target_json: string }>).map(
      (r) => JSON.parse(r.target_json) as StackRevision,
    );
  } finally {
    db.close();
  }
}

/** An unkeyed digest of a guessed value, the way anyone could compute it without the hub's key. */
const unkeyed = (stack: string, name: string, value: string): string => createHash('sha256').update(`dockfleet.stack-secret.v1\0${stack}\0${name}\0${value}`).digest('hex');

test('equal intent keeps an equal digest; a different secret value changes it', async () => {
  await deploy(WEAK);
  await deploy(WEAK);
  await deploy('another-value');
  const [a, b, c] = storedTargets();
  assert.equal(a!.digest, b!.digest, 'the same file and secrets: the same digest');
  assert.notEqual(a!.digest, c!.digest, 'the secret value is part of the digest');
});

test('guesses of a weak secret cannot be tested against the database copy offline', () => {
  const [target] = storedTargets();
  assert.ok(!JSON.stringify(target).includes(WEAK), 'the value itself is not stored');
  for (const guess of GUESSES) {
    const candidate = projectDigest(target!.project, { DB_PASSWORD: unkeyed('vault', 'DB_PASSWORD', guess) });
    assert.notEqual(candidate, target!.digest, `the digest confirms the guess ${JSON.stringify(guess)} without the hub's key`);
  }
});
