/**
 * The OpenAPI 3.1 document at GET /api/v1/openapi.json, against a real hub with a real agent on a
 * private engine: it covers exactly the routes the hub's REST app serves, it is well formed (every
 * $ref resolves, every schema compiles under JSON Schema 2020-12), each real answer matches the
 * schema documented for its status, and the request schemas it shows are the routes' validators.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ValidateFunction } from 'ajv';
import { openApiPath } from '../src/hub/openapi/operations.ts';
import { runContainer } from './support/engines.ts';
import { waitFor } from './support/hub-fixture.ts';
import { startNodeRig, stopNodeRig, type NodeRig } from './support/node-rig.ts';
import { makeCa, makeLeaf } from './support/test-certs.ts';

type Json = Record<string, any>;
let rig: Partial<NodeRig> = {};
let doc: Json;
const NODE = 'oa1';
const BASE = 'https://dockfleet.test/openapi';
const ajv = new Ajv2020({ strict: true, strictRequired: false, allErrors: true, validateFormats: false });
const compiled = new Map<string, ValidateFunction>();
/** `METHOD /path/{param}` of each operation a check below exercised, with the statuses seen. */
const exercised = new Map<string, Set<number>>();

/** An embedded schema with its `#/components/...` refs pointing at the components added to ajv. */
function portable(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(portable);
  if (node === null || typeof node !== 'object') return node;
  return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, k === '$ref' && typeof v === 'string' && v.startsWith('#/components/schemas/') ? `${BASE}/${v.slice(21)}` : portable(v)]));
}
function compile(schema: unknown, key: string): ValidateFunction {
  let v = compiled.get(key);
  if (!v) compiled.set(key, (v = ajv.compile(portable(schema) as object)));
  return v;
}

function responseSchema(method: string, template: string, status: number): unknown {
  const op = doc.paths[template]?.[method.toLowerCase()];
  assert.ok(op, `${method} ${template} is not in the document`);
  const answer = op.responses[String(status)] ?? op.responses[`${String(status)[0]}XX`];
  assert.ok(answer, `${method} ${template} documents no answer for ${status}`);
  return answer.content['application/json'].schema;
}

/** Calls the hub and checks its JSON answer against the document's schema for the status it got. */
async function check(method: string, template: string, path: string, body?: unknown, want?: number, token?: string): Promise<any> {
  const res = await rig.hub!.api(method, path, body, token);
  if (want !== undefined) assert.equal(res.status, want, `${method} ${path}: ${JSON.stringify(res.json)}`);
  const validate = compile(responseSchema(method, template, res.status), `${method} ${template} ${res.status}`);
  assert.ok(validate(res.json), `${method} ${path} → ${res.status} does not match its documented schema: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(res.json).slice(0, 1500)}`);
  const key = `${method} ${template}`;
  if (!exercised.has(key)) exercised.set(key, new Set());
  exercised.get(key)!.add(res.status);
  return res.json;
}

before(async () => {
  rig = await startNodeRig('openapi', NODE).catch(async (err) => {
    throw err;
  });
  await runContainer(rig.engine!, { name: 'oa-web', labels: { 'dockfleet.ingress.host': 'oa.example.test', 'dockfleet.ingress.port': '80' } });
  await waitFor(async () => (await rig.hub!.api('GET', `/api/v1/nodes/${NODE}/containers`)).json.length > 0, 30_000, "the container in the hub's inventory");
  const res = await rig.hub!.api('GET', '/api/v1/openapi.json');
  assert.equal(res.status, 200);
  doc = res.json;
  for (const [name, schema] of Object.entries(doc.components.schemas as Json)) ajv.addSchema({ $id: `${BASE}/${name}`, ...(portable(schema) as object) });
});

after(async () => {
  await stopNodeRig(rig);
});

test('the document covers exactly the routes the hub serves under /api/v1, both ways', () => {
  const served = new Set(rig.hub!.hub.restApp.routes.filter((r) => r.method !== 'ALL' && r.path.startsWith('/api/v1/') && !r.path.includes('*')).map((r) => `${r.method} ${openApiPath(r.path)}`));
  const documented = new Set(Object.entries(doc.paths as Json).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`)));
  assert.ok(served.size > 70, `only ${served.size} routes served?`);
  assert.deepEqual([...served].filter((k) => !documented.has(k)).sort(), [], 'served but not documented');
  assert.deepEqual([...documented].filter((k) => !served.has(k)).sort(), [], 'documented but not served');
});

test('the document is OpenAPI 3.1: every operation answers, every $ref resolves, every schema compiles (draft 2020-12)', async () => {
  assert.match(doc.openapi, /^3\.1\.\d+$/);
  assert.equal(doc.jsonSchemaDialect, 'https://json-schema.org/draft/2020-12/schema');
  assert.equal((await rig.hub!.api('GET', '/api/v1/openapi.json', undefined, '')).status, 401, 'the document needs a signed-in caller, like the rest of /api/v1');
  const ids = new Set<string>();
  for (const [path, ops] of Object.entries(doc.paths as Json)) {
    assert.match(path, /^\/api\/v1\//);
    for (const [method, op] of Object.entries(ops as Json)) {
      assert.ok(!ids.has(op.operationId), `operationId ${op.operationId} twice`);
      ids.add(op.operationId);
      assert.ok(
        Object.keys(op.responses).some((s) => /^2\d\d$/.test(s)),
        `${method} ${path} has no success answer`,
      );
      assert.ok(op.responses['4XX'] && op.responses['5XX'], `${method} ${path} documents no error answer`);
      for (const name of [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1])) {
        assert.ok(
          op.parameters?.some((p: Json) => p.in === 'path' && p.name === name && p.required === true),
          `${method} ${path}: path parameter ${name}`,
        );
      }
      for (const [status, r] of Object.entries(op.responses as Json)) for (const [type, media] of Object.entries(r.content as Json)) compile(media.schema, `${method} ${path} ${status} ${type}`);
      if (op.requestBody) compile(op.requestBody.content['application/json'].schema, `body ${method} ${path}`);
      for (const p of op.parameters ?? []) compile(p.schema, `param ${method} ${path} ${p.name}`);
    }
  }
  // Every $ref in the document points at something in it.
  const refs: string[] = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === 'object') for (const [k, v] of Object.entries(node)) k === '$ref' && typeof v === 'string' ? refs.push(v) : walk(v);
  };
  walk(doc);
  assert.ok(refs.length > 0);
  for (const ref of refs) {
    assert.ok(ref.startsWith('#/'), `${ref} is not local`);
    const target = ref
      .slice(2)
      .split('/')
      .reduce<any>((at, part) => at?.[part.replace(/~1/g, '/').replace(/~0/g, '~')], doc);
    assert.ok(target !== undefined, `${ref} resolves to nothing`);
  }
});

test('the request schemas in the document are the validators: bodies it calls invalid are refused with 400', async () => {
  const bodySchema = (method: string, path: string): ValidateFunction => compile(doc.paths[path][method].requestBody.content['application/json'].schema, `body ${method} ${path}`);
  const cases: Array<[string, string, string, unknown]> = [
    ['post', '/api/v1/users', '/api/v1/users', { name: 'Not Valid!', role: 'operator' }],
    ['post', '/api/v1/users', '/api/v1/users', { name: 'carl', role: 'root' }],
    ['post', '/api/v1/tokens', '/api/v1/tokens', { name: '' }],
    ['post', '/api/v1/enrollments', '/api/v1/enrollments', { name: 'x', ttlSeconds: 0 }],
    ['post', '/api/v1/stacks/{name}/deploy', '/api/v1/stacks/oa2/deploy', { compose: 'services: {}', target: { node: NODE }, surprise: 1 }],
    ['put', '/api/v1/nodes/{name}/labels', `/api/v1/nodes/${NODE}/labels`, { labels: { role: 5 } }],
    ['post', '/api/v1/registries', '/api/v1/registries', { server: 'not a host', username: 'u', password: 'p' }],
    ['post', '/api/v1/alert-receivers', '/api/v1/alert-receivers', { name: 'x', format: 'carrier-pigeon', url: 'http://127.0.0.1:9/' }],
  ];
  for (const [method, template, path, body] of cases) {
    assert.equal(bodySchema(method, template)(body), false, `the document accepts ${JSON.stringify(body)} for ${method} ${template}`);
    const res = await rig.hub!.api(method.toUpperCase(), path, body);
    assert.equal(res.status, 400, `${method} ${path} ${JSON.stringify(body)} → ${res.status} ${JSON.stringify(res.json)}`);
    assert.equal(res.json.error.code, 'validation_failed');
  }
  // And a body the document accepts passes the route's validation.
  const ok = { name: `t${randomBytes(3).toString('hex')}` };
  assert.equal(bodySchema('post', '/api/v1/tokens')(ok), true);
  assert.equal((await rig.hub!.api('POST', '/api/v1/tokens', ok)).status, 201);
});

test('real answers match the schemas documented for their status, successes and errors alike', async () => {
  const n = `/api/v1/nodes/${NODE}`;
  // Reads.
  await check('GET', '/api/v1/openapi.json', '/api/v1/openapi.json', undefined, 200);
  await check('GET', '/api/v1/setup', '/api/v1/setup', undefined, 200);
  await check('GET', '/api/v1/me', '/api/v1/me', undefined, 200);
  const nodes = await check('GET', '/api/v1/nodes', '/api/v1/nodes', undefined, 200);
  assert.ok(nodes.some((x: Json) => x.name === NODE && x.status === 'online'));
  await check('GET', '/api/v1/nodes/{name}', n, undefined, 200);
  for (const section of ['containers', 'images', 'volumes', 'networks']) await check('GET', `/api/v1/nodes/{name}/${section}`, `${n}/${section}`, undefined, 200);
  await check('GET', '/api/v1/nodes/{name}/ping', `${n}/ping`, undefined, 200);
  await check('GET', '/api/v1/routes', '/api/v1/routes', undefined, 200);
  await check('GET', '/api/v1/certificates', '/api/v1/certificates', undefined, 200);
  await check('GET', '/api/v1/events', '/api/v1/events', undefined, 200);
  await check('GET', '/api/v1/alerts', '/api/v1/alerts', undefined, 200);
  await check('GET', '/api/v1/audit/verify', '/api/v1/audit/verify', undefined, 200);
  await check('GET', '/api/v1/nodes/{name}/audit-agreement', `${n}/audit-agreement`, undefined, 200);
  await check('GET', '/api/v1/nodes/{name}/backup-status', `${n}/backup-status`, undefined, 200);
  await check('GET', '/api/v1/nodes/{name}/volumes/{volume}/backup-status', `${n}/volumes/oa-data/backup-status`, undefined, 200);
  // Errors are the one shape, and documented as such.
  await check('GET', '/api/v1/nodes/{name}', '/api/v1/nodes/nope', undefined, 404);
  await check('GET', '/api/v1/jobs/{id}', `/api/v1/jobs/job_${'0'.repeat(24)}`, undefined, 404);
  await check('GET', '/api/v1/jobs', '/api/v1/jobs?limit=0', undefined, 400);
  await check('GET', '/api/v1/nodes/{name}/rebuild', `${n}/rebuild`, undefined, 404);
  await check('GET', '/api/v1/nodes/{name}/rebuild/signing', `${n}/rebuild/signing`, undefined, 404);
  await check('POST', '/api/v1/nodes/{name}/rebuild', `${n}/rebuild`, {}, 404);
  await check('POST', '/api/v1/enroll', '/api/v1/enroll', { code: 'not-a-code', publicKey: 'x' });
  await check('POST', '/api/v1/edge/hand-off', '/api/v1/edge/hand-off', { host: 'oa.example.test', return: '/' }, 403);
  await check('POST', '/api/v1/nodes/{name}/approve', `${n}/approve`, undefined);

  // Enrollment codes and join tokens.
  await check('POST', '/api/v1/enrollments', '/api/v1/enrollments', { name: 'oa2' }, 201);
  await check('POST', '/api/v1/join-tokens', '/api/v1/join-tokens', {}, 201);
  const codes = await check('GET', '/api/v1/enrollments', '/api/v1/enrollments', undefined, 200);
  await check('DELETE', '/api/v1/enrollments/{id}', `/api/v1/enrollments/${codes[0].id}`, undefined, 200);

  // People, grants, tokens, sessions.
  const ann = await check('POST', '/api/v1/users', '/api/v1/users', { name: 'ann', role: 'operator', password: 'a long enough password 1' }, 201);
  await check('GET', '/api/v1/users', '/api/v1/users', undefined, 200);
  await check('PATCH', '/api/v1/users/{name}', '/api/v1/users/ann', { role: 'viewer' }, 200);
  const grant = await check('POST', '/api/v1/users/{name}/grants', '/api/v1/users/ann/grants', { node: NODE, role: 'operator' }, 201);
  await check('GET', '/api/v1/users/{name}/grants', '/api/v1/users/ann/grants', undefined, 200);
  await check('DELETE', '/api/v1/users/{name}/grants/{id}', `/api/v1/users/ann/grants/${grant.id}`, undefined, 200);
  await check('POST', '/api/v1/me/password', '/api/v1/me/password', { current: 'a long enough password 1', next: 'another long password 2' }, 200, ann.token);
  await check('POST', '/api/v1/session', '/api/v1/session', { username: 'ann', password: 'another long password 2' }, 200, '');
  await check('POST', '/api/v1/session', '/api/v1/session', { username: 'ann', password: 'wrong password' }, 401, '');
  await check('POST', '/api/v1/setup', '/api/v1/setup', { setupCode: 'x'.repeat(20), username: 'bob', password: 'a long enough password 3' });
  await check('POST', '/api/v1/users/{name}/password', '/api/v1/users/ann/password', undefined, 200);
  await check('DELETE', '/api/v1/session', '/api/v1/session', undefined, 200, ann.token);
  await check('POST', '/api/v1/tokens', '/api/v1/tokens', { name: 'oa' }, 201);
  const tokens = await check('GET', '/api/v1/tokens', '/api/v1/tokens', undefined, 200);
  const mine = tokens.find((t: Json) => t.name === 'oa');
  await check('DELETE', '/api/v1/tokens/{id}', `/api/v1/tokens/${mine.id}`, undefined, 200);
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const cert = await check('POST', '/api/v1/client-certs', '/api/v1/client-certs', { publicKey: publicKey.export({ type: 'spki', format: 'pem' }) }, 201);
  await check('DELETE', '/api/v1/client-certs/{serial}', `/api/v1/client-certs/${cert.serial}`, undefined, 200);
  await check('DELETE', '/api/v1/client-certs/{serial}', `/api/v1/client-certs/${cert.serial}`, undefined, 409);

  // Operator keys, registries, certificates, alert receivers.
  const ed = generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }).x!;
  const key = await check('POST', '/api/v1/operator-keys', '/api/v1/operator-keys', { publicKey: `ed25519:${ed}`, name: 'oa' }, 201);
  await check('GET', '/api/v1/operator-keys', '/api/v1/operator-keys?all=1', undefined, 200);
  await check('DELETE', '/api/v1/operator-keys/{id}', `/api/v1/operator-keys/${key.id}`, undefined, 200);
  const reg = await check('POST', '/api/v1/registries', '/api/v1/registries', { server: '127.0.0.1:5999', username: 'u', password: 'p' }, 201);
  await check('GET', '/api/v1/registries', '/api/v1/registries', undefined, 200);
  await check('DELETE', '/api/v1/registries/{id}', `/api/v1/registries/${reg.id}`, undefined, 200);
  const ca = await makeCa();
  const leaf = await makeLeaf(ca, { names: ['oa.example.test'] });
  const added = await check('POST', '/api/v1/certificates', '/api/v1/certificates', { certPem: leaf.certPem, keyPem: leaf.keyPem }, 201);
  await check('DELETE', '/api/v1/certificates/{id}', `/api/v1/certificates/${added.id}`, undefined, 200);
  const rcv = await check('POST', '/api/v1/alert-receivers', '/api/v1/alert-receivers', { name: 'oa', format: 'json', url: 'http://127.0.0.1:9/hook' }, 201);
  await check('PATCH', '/api/v1/alert-receivers/{id}', `/api/v1/alert-receivers/${rcv.id}`, { enabled: false }, 200);
  await check('POST', '/api/v1/alert-receivers/{id}/test', `/api/v1/alert-receivers/${rcv.id}/test`, undefined, 200);
  await check('GET', '/api/v1/alert-receivers', '/api/v1/alert-receivers', undefined, 200);
  await check('DELETE', '/api/v1/alert-receivers/{id}', `/api/v1/alert-receivers/${rcv.id}`, undefined, 200);

  // Labels and a stack deployed by the real agent: stacks, rollouts, history, jobs.
  await check('PUT', '/api/v1/nodes/{name}/labels', `${n}/labels`, { labels: { role: 'web' } }, 200);
  const compose = `services:\n  app:\n    image: dockfleet-test/busybox:latest\n    command: ["sleep", "3600"]\n`;
  await check('POST', '/api/v1/stacks/{name}/validate', '/api/v1/stacks/oa/validate', { compose }, 200);
  const bad = await check('POST', '/api/v1/stacks/{name}/deploy', '/api/v1/stacks/oa/deploy', { compose: 'services:\n  web:\n    ports: 12\n', target: { node: NODE } }, 400);
  assert.ok(Array.isArray(bad.error.errors), 'a refused Compose file lists its problems');
  const started = await check('POST', '/api/v1/stacks/{name}/deploy', '/api/v1/stacks/oa/deploy', { compose, target: { node: NODE } }, 202);
  const job = await waitFor(
    async () => {
      const j = (await rig.hub!.api('GET', `/api/v1/jobs/${started.jobs[0]}`)).json;
      return j.state === 'succeeded' || j.state === 'failed' ? j : null;
    },
    120_000,
    'the deploy job',
  );
  assert.equal(job.state, 'succeeded', JSON.stringify(job));
  await check('GET', '/api/v1/jobs/{id}', `/api/v1/jobs/${started.jobs[0]}`, undefined, 200);
  await check('GET', '/api/v1/jobs', `/api/v1/jobs?node=${NODE}`, undefined, 200);
  await check('GET', '/api/v1/stacks', '/api/v1/stacks', undefined, 200);
  await check('GET', '/api/v1/stacks/{name}', '/api/v1/stacks/oa', undefined, 200);
  await check('GET', '/api/v1/stacks/{name}/history', '/api/v1/stacks/oa/history', undefined, 200);
  await check('GET', '/api/v1/stacks/{name}/revisions/{rev}', '/api/v1/stacks/oa/revisions/1', undefined, 200);
  await check('GET', '/api/v1/stacks/{name}/rollouts/{id}', `/api/v1/stacks/oa/rollouts/${started.rollout}`, undefined, 200);
  // A signed deploy waits for a signature: decline it, and see a bad intent refused.
  const signed = await check('POST', '/api/v1/stacks/{name}/deploy', '/api/v1/stacks/oa/deploy', { compose: `${compose}    environment:\n      X: "2"\n`, target: { node: NODE }, sign: true }, 202);
  assert.equal(signed.signing.jobs.length, 1);
  await check('POST', '/api/v1/jobs/{id}/intent', `/api/v1/jobs/${signed.jobs[0]}/intent`, { intent: 'not an intent' });
  await check('POST', '/api/v1/jobs/{id}/decline', `/api/v1/jobs/${signed.jobs[0]}/decline`, { reason: 'not today' }, 200);
  await waitFor(async () => (await rig.hub!.api('GET', `/api/v1/stacks/oa/rollouts/${signed.rollout}`)).json.state !== 'running', 30_000, 'the declined rollout to end');
  await check('POST', '/api/v1/stacks/{name}/rollback', '/api/v1/stacks/oa/rollback', { to: 1, sign: true });
  await check('GET', '/api/v1/audit', '/api/v1/audit?limit=50', undefined, 200);

  // Volume backups: filings answer with the job (the agent's outcome is not the point here).
  await check('PUT', '/api/v1/nodes/{name}/volumes/{volume}/backup-policy', `${n}/volumes/oa-data/backup-policy`, { every: '1h', sign: true }, 200);
  await check('GET', '/api/v1/nodes/{name}/volumes/{volume}/backup-policy', `${n}/volumes/oa-data/backup-policy`, undefined, 200);
  await check('DELETE', '/api/v1/nodes/{name}/volumes/{volume}/backup-policy', `${n}/volumes/oa-data/backup-policy?sign=true`, undefined, 200);
  await check('GET', '/api/v1/nodes/{name}/volumes/{volume}/backup-policy', `${n}/volumes/oa-data/backup-policy`, undefined, 404);
  await check('POST', '/api/v1/nodes/{name}/volumes/{volume}/backups', `${n}/volumes/oa-data/backups`, { sign: true }, 202);
  await check('POST', '/api/v1/nodes/{name}/volumes/{volume}/restores', `${n}/volumes/oa-data/restores`, { sign: true }, 202);
  await check('POST', '/api/v1/nodes/{name}/volumes/{volume}/snapshots', `${n}/volumes/oa-data/snapshots`, { sign: true }, 202);

  // Agent releases: this hub has no release key, so it lists none and refuses changes (test/agent-upgrade.test.ts covers the rest).
  await check('GET', '/api/v1/releases', '/api/v1/releases', undefined, 200);
  const unsignedRelease = { v: 1, manifest: { name: 'dockfleet', version: '1.0.0', sha256: '0'.repeat(64), size: 1 }, key: `ed25519:${'A'.repeat(43)}`, sig: 'A'.repeat(86) };
  await check('POST', '/api/v1/releases', '/api/v1/releases', { package: 'AA==', signature: unsignedRelease }, 409);
  await check('GET', '/api/v1/agent-upgrades', '/api/v1/agent-upgrades', undefined, 200);
  await check('POST', '/api/v1/agent-upgrades', '/api/v1/agent-upgrades', { to: '1.0.0' }, 409);
  await check('GET', '/api/v1/agent-upgrades/{id}', '/api/v1/agent-upgrades/none', undefined, 404);

  // Last, what changes the node itself.
  await check('DELETE', '/api/v1/stacks/{name}', '/api/v1/stacks/oa?sign=true', undefined);
  await check('POST', '/api/v1/nodes/{name}/rotate', `${n}/rotate`, undefined, 200);
  await check('POST', '/api/v1/nodes/{name}/revoke', `${n}/revoke`, undefined, 200);

  const all = Object.entries(doc.paths as Json).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
  const missed = all.filter((k) => !exercised.has(k));
  console.log(`# exercised ${exercised.size} of ${all.length} operations; not exercised: ${missed.join(', ') || 'none'}`);
  const errorsOnly = [...exercised].filter(([, statuses]) => ![...statuses].some((s) => s < 300)).map(([k, statuses]) => `${k} (${[...statuses].join(', ')})`);
  console.log(`# exercised with error answers only: ${errorsOnly.join('; ') || 'none'}`);
  assert.ok(exercised.size >= all.length - 3, `too few operations exercised; missed ${missed.join(', ')}`);
});
