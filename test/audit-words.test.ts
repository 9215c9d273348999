/**
 * Audit in words: every kind of row the hub writes today (the REST middleware, sign-in and
 * setup records, the Docker gateway, the terminal bridge, the volume files proxy) reads as a
 * sentence, with links to the node's and container's pages. Docker rows are built with the
 * gateway's own route parser, so a change in what the hub records shows up here.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDockerRoute } from '../src/hub/docker/docker-route.ts';
import { auditWords, type AuditWordsInput } from '../src/web/lib/audit-words.ts';

/** The path the Docker gateway records for a request URL (its own parser, not a copy). */
function engine(url: string): string {
  const route = parseDockerRoute(url);
  assert.ok(route, url);
  return route.enginePath;
}

type Row = [user: string, node: string | null, method: string, path: string, status: number | null, words: string];

const ROWS: Row[] = [
  // Terminal bridge
  ['mara', 'shop-01', 'POST', '/containers/web/exec (terminal)', 101, 'mara opened a terminal in web on shop-01'],
  // Docker gateway (node routes): containers
  ['admin.token', 'shop-01', 'POST', engine('/docker/nodes/shop-01/v1.43/containers/create?name=web-1'), 201, 'admin.token created container web-1 on shop-01'],
  ['admin', 'shop-01', 'POST', engine('/docker/nodes/shop-01/containers/create'), 201, 'admin created a container on shop-01'],
  ['vic', 'shop-01', 'POST', engine('/docker/nodes/shop-01/v1.43/containers/web-1/start'), 204, 'vic started container web-1 on shop-01'],
  ['vic', 'shop-01', 'POST', engine('/docker/nodes/shop-01/v1.43/containers/web-1/stop?t=10'), 204, 'vic stopped container web-1 on shop-01'],
  ['vic', 'shop-01', 'POST', engine('/docker/nodes/shop-01/containers/web-1/restart'), 204, 'vic restarted container web-1 on shop-01'],
  ['vic', 'shop-01', 'POST', engine('/docker/nodes/shop-01/containers/web-1/kill?signal=KILL'), 204, 'vic killed container web-1 on shop-01'],
  ['vic', 'shop-01', 'POST', engine('/docker/nodes/shop-01/containers/web-1/pause'), 204, 'vic paused container web-1 on shop-01'],
  ['vic', 'shop-01', 'POST', engine('/docker/nodes/shop-01/containers/web-1/unpause'), 204, 'vic unpaused container web-1 on shop-01'],
  ['vic', 'shop-01', 'POST', engine('/docker/nodes/shop-01/containers/web-1/rename?name=web-2'), 204, 'vic renamed container web-1 to web-2 on shop-01'],
  ['vic', 'shop-01', 'POST', engine('/docker/nodes/shop-01/containers/web-1/update'), 200, 'vic changed the resources of container web-1 on shop-01'],
  ['vic', 'shop-01', 'DELETE', engine('/docker/nodes/shop-01/v1.43/containers/web-1?force=1'), 204, 'vic removed container web-1 on shop-01'],
  ['vic', 'shop-01', 'POST', engine('/docker/nodes/shop-01/containers/web-1/exec'), 201, 'vic ran a command in web-1 on shop-01'],
  ['vic', 'shop-01', 'POST', engine('/docker/nodes/shop-01/containers/web-1/attach?stream=1'), 101, 'vic attached to container web-1 on shop-01'],
  ['vic', 'shop-01', 'PUT', engine('/docker/nodes/shop-01/containers/web-1/archive?path=/tmp'), 200, 'vic uploaded files into web-1 on shop-01'],
  ['vic', 'shop-01', 'POST', engine('/docker/nodes/shop-01/containers/prune'), 200, 'vic pruned stopped containers on shop-01'],
  // images
  ['vic', 'shop-01', 'POST', engine('/docker/nodes/shop-01/v1.43/images/create?fromImage=nginx&tag=1.27'), 200, 'vic pulled image nginx:1.27 on shop-01'],
  ['vic', 'shop-01', 'POST', engine('/docker/nodes/shop-01/images/create?fromSrc=-&repo=base'), 200, 'vic imported an image on shop-01'],
  ['vic', 'shop-01', 'DELETE', engine('/docker/nodes/shop-01/images/registry.example/app:2?force=1'), 200, 'vic removed image registry.example/app:2 on shop-01'],
  ['vic', 'shop-01', 'POST', engine('/docker/nodes/shop-01/images/app:2/tag?repo=app&tag=prod'), 201, 'vic tagged image app:2 as app:prod on shop-01'],
  ['vic', 'shop-01', 'POST', engine('/docker/nodes/shop-01/images/prune?filters=%7B%7D'), 200, 'vic pruned unused images on shop-01'],
  ['vic', 'shop-01', 'POST', engine('/docker/nodes/shop-01/build?t=app:3'), 200, 'vic built image app:3 on shop-01'],
  // volumes and networks
  ['vic', 'shop-01', 'POST', engine('/docker/nodes/shop-01/volumes/create'), 201, 'vic created a volume on shop-01'],
  ['vic', 'shop-01', 'DELETE', engine('/docker/nodes/shop-01/volumes/data'), 204, 'vic removed volume data on shop-01'],
  ['vic', 'shop-01', 'POST', engine('/docker/nodes/shop-01/volumes/prune'), 200, 'vic pruned unused volumes on shop-01'],
  ['vic', 'shop-01', 'POST', engine('/docker/nodes/shop-01/networks/create'), 201, 'vic created a network on shop-01'],
  ['vic', 'shop-01', 'DELETE', engine('/docker/nodes/shop-01/networks/backend'), 204, 'vic removed network backend on shop-01'],
  ['vic', 'shop-01', 'POST', engine('/docker/nodes/shop-01/networks/backend/connect'), 200, 'vic connected a container to network backend on shop-01'],
  ['vic', 'shop-01', 'POST', engine('/docker/nodes/shop-01/networks/prune'), 200, 'vic pruned unused networks on shop-01'],
  // Volume files proxy (its own path form)
  ['vic', 'shop-01', 'PUT', '/volumes/data/files?path=%2Fconf%2Fa.txt', 201, 'vic changed files in volume data (/conf/a.txt) on shop-01'],
  ['vic', 'shop-01', 'DELETE', '/volumes/data/files?path=%2Fold', 204, 'vic deleted files in volume data (/old) on shop-01'],
  // Account records and the REST middleware
  ['admin', null, 'POST', '/api/v1/setup', 201, 'admin set up the hub as its first admin'],
  ['mallory', null, 'POST', '/api/v1/session', 401, 'mallory tried to sign in'],
  ['mara', null, 'POST', '/api/v1/session', 201, 'mara signed in'],
  ['mara', null, 'DELETE', '/api/v1/session', 204, 'mara signed out'],
  ['mara', null, 'POST', '/api/v1/me/password', 204, 'mara changed their password'],
  ['mara', null, 'POST', '/api/v1/tokens', 201, 'mara created an API token'],
  ['mara', null, 'DELETE', '/api/v1/tokens/7', 200, 'mara revoked an API token'],
  ['mara', null, 'POST', '/api/v1/client-certs', 201, 'mara got a Docker client certificate'],
  ['admin', null, 'DELETE', '/api/v1/client-certs/0a1b', 200, 'admin revoked Docker client certificate 0a1b'],
  ['admin', null, 'POST', '/api/v1/certificates', 201, 'admin added a certificate'],
  ['admin', null, 'DELETE', '/api/v1/certificates/c1', 200, 'admin removed certificate c1'],
  ['mara', null, 'POST', '/api/v1/edge/hand-off', 200, 'mara signed in to an app behind the edge'],
  ['admin', null, 'POST', '/api/v1/enrollments', 201, 'admin created an enrollment code'],
  ['admin', null, 'POST', '/api/v1/join-tokens', 201, 'admin created a join token'],
  ['admin', null, 'POST', '/api/v1/users', 201, 'admin created a user'],
  ['admin', 'shop-01', 'POST', '/api/v1/nodes/shop-01/approve', 200, 'admin approved node shop-01'],
  ['admin', 'shop-01', 'POST', '/api/v1/nodes/shop-01/revoke', 200, 'admin revoked node shop-01'],
  ['admin', 'shop-01', 'POST', '/api/v1/nodes/shop-01/rotate', 200, 'admin rotated the key of node shop-01'],
  ['admin', 'shop-01', 'PUT', '/api/v1/nodes/shop-01/labels', 200, 'admin changed the labels of shop-01'],
  ['vic', null, 'POST', '/api/v1/stacks/shop/deploy', 202, 'vic deployed stack shop'],
  ['vic', null, 'POST', '/api/v1/stacks/shop/rollback', 202, 'vic rolled back stack shop'],
  ['vic', null, 'DELETE', '/api/v1/stacks/shop', 202, 'vic removed stack shop'],
  // Failures and calls still running
  ['vic', 'shop-01', 'POST', engine('/docker/nodes/shop-01/containers/create?name=web-1'), 409, 'vic tried to create container web-1 on shop-01'],
  ['vic', null, 'POST', '/api/v1/stacks/shop/rollback', 409, 'vic tried to roll back stack shop'],
  ['vic', 'shop-01', 'POST', '/containers/web/exec (terminal)', null, 'vic opened a terminal in web on shop-01'],
  // Anything unknown stays readable, never hidden
  ['vic', null, 'POST', '/api/v1/something-new/x', 200, 'vic called POST /api/v1/something-new/x'],
  ['vic', 'shop-01', 'POST', engine('/docker/nodes/shop-01/swarm/init'), 503, 'vic tried to call POST /swarm/init on shop-01'],
];

for (const [user, node, method, path, status, words] of ROWS) {
  test(`${method} ${path} (${status ?? 'running'}) reads "${words}"`, () => {
    assert.equal(auditWords({ user, node, method, path, status }).text, words);
  });
}

test('the node and the container are links to their pages; a removed container is not', () => {
  const row: AuditWordsInput = { user: 'mara', node: 'shop-01', method: 'POST', path: '/containers/web/exec (terminal)', status: 101 };
  const links = auditWords(row).parts.filter((p) => typeof p !== 'string');
  assert.deepEqual(links, [
    { text: 'web', href: '/containers/shop-01/web' },
    { text: 'shop-01', href: '/containers?node=shop-01' },
  ]);
  const removed = auditWords({ ...row, method: 'DELETE', path: '/containers/web' }).parts.filter((p) => typeof p !== 'string');
  assert.deepEqual(removed, [{ text: 'shop-01', href: '/containers?node=shop-01' }]);
  const stack = auditWords({ user: 'vic', node: null, method: 'POST', path: '/api/v1/stacks/shop/deploy', status: 202 }).parts.filter((p) => typeof p !== 'string');
  assert.deepEqual(stack, [{ text: 'shop', href: '/stacks/shop' }]);
});

test('names are decoded once and never treated as markup', () => {
  const w = auditWords({ user: '<b>x</b>', node: 'n1', method: 'POST', path: '/containers/create?name=a%20b', status: 201 });
  assert.equal(w.text, '<b>x</b> created container a b on n1');
  assert.equal(typeof w.parts[0], 'string');
});
