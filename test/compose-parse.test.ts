/** The Compose front door: a Compose file, its variables and files become the normalised
 * StackProject the agent applies, or every problem with its path and line; nothing Compose
 * allows is silently dropped, and secret values never enter the project. Pure: no engine. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseCompose, projectDigest } from '../src/hub/stacks/compose/parse-compose.ts';
import type { ComposeInput, ComposeResult } from '../src/hub/stacks/compose/parse-compose.ts';
import { interpolate } from '../src/hub/stacks/compose/interpolate.ts';
import { stackProject } from '../src/protocol/stacks.ts';

const fixture = (name: string): string => readFileSync(new URL(`./fixtures/compose/${name}`, import.meta.url), 'utf8');
const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

function parse(yaml: string, more: Partial<ComposeInput> = {}): ComposeResult {
  return parseCompose({ stack: 'app', yaml, env: {}, secretEnv: {}, files: {}, ...more });
}
function ok(result: ComposeResult) {
  if (!result.ok) assert.fail(`expected a project, got ${JSON.stringify(result.errors, null, 1)}`);
  stackProject.parse(result.project);
  return result;
}
function errors(result: ComposeResult) {
  if (result.ok) assert.fail('expected errors, got a project');
  return result.errors;
}
const service = (yaml: string) => `services:\n  web:\n    image: nginx\n${yaml}`;

test('wordpress and mysql: health-gated depends_on, healthcheck durations, secrets kept out, named volumes', () => {
  const secretEnv = { DB_ROOT_PASSWORD: 'r00t-Hunter2!', DB_PASSWORD: 'wp-Hunter2!' };
  const result = ok(parseCompose({ stack: 'blog', yaml: fixture('wordpress.yml'), env: {}, secretEnv, files: {} }));
  const { db, wordpress } = result.project.services;
  assert.ok(db && wordpress);
  assert.deepEqual(wordpress.dependsOn, { db: { condition: 'service_healthy' } });
  assert.deepEqual(db.healthcheck, {
    test: ['CMD-SHELL', 'mysqladmin ping -h 127.0.0.1 -uroot -p$MYSQL_ROOT_PASSWORD'],
    intervalNs: 10e9,
    timeoutNs: 5e9,
    retries: 5,
    startPeriodNs: 90e9,
  });
  assert.deepEqual(db.command, ['--default-authentication-plugin=mysql_native_password']);
  assert.equal(wordpress.image, 'wordpress:6.5-apache');
  assert.equal(db.restart, 'always');
  assert.equal(wordpress.restart, 'unless-stopped');
  assert.deepEqual(wordpress.ports, [{ target: 80, published: 8080, hostIp: '127.0.0.1', protocol: 'tcp' }]);
  assert.equal(wordpress.resources.memoryBytes, 512 * 1024 * 1024);
  assert.deepEqual(db.environment, { MYSQL_DATABASE: 'wordpress', MYSQL_USER: 'wordpress' });
  assert.deepEqual(db.secretEnvironment, ['MYSQL_PASSWORD', 'MYSQL_ROOT_PASSWORD']);
  assert.deepEqual(wordpress.secretEnvironment, ['WORDPRESS_DB_PASSWORD']);
  assert.deepEqual(result.secretEnv, {
    MYSQL_ROOT_PASSWORD: 'r00t-Hunter2!',
    MYSQL_PASSWORD: 'wp-Hunter2!',
    WORDPRESS_DB_PASSWORD: 'wp-Hunter2!',
  });
  assert.deepEqual(db.mounts, [{ type: 'volume', source: 'db_data', target: '/var/lib/mysql', readOnly: false }]);
  assert.equal(result.project.volumes.db_data?.name, 'blog_db_data');
  assert.equal(result.project.volumes.wp_content?.name, 'shared_wp_content');
  assert.deepEqual(result.project.networks, { default: { name: 'blog_default', external: false, driver: null, labels: {}, internal: false } });
  assert.deepEqual(wordpress.networks, { default: { aliases: [] } });
  const json = JSON.stringify(result.project);
  for (const secret of Object.values(secretEnv)) assert.ok(!json.includes(secret), 'a secret value reached the project');
});

test('traefik-style file: dotted labels, long ports, docker.sock bind, external network, logging, limits, extra hosts', () => {
  const result = ok(parse(fixture('traefik.yml'), { stack: 'edge' }));
  const { traefik, whoami } = result.project.services;
  assert.ok(traefik && whoami);
  assert.deepEqual(whoami.labels, {
    'traefik.enable': 'true',
    'traefik.http.routers.whoami.rule': 'Host(`whoami.localhost`)',
    'traefik.http.routers.whoami.entrypoints': 'web',
  });
  assert.deepEqual(traefik.ports, [
    { target: 80, published: 80, hostIp: '', protocol: 'tcp' },
    { target: 8080, published: 8081, hostIp: '::1', protocol: 'tcp' },
  ]);
  assert.deepEqual(traefik.mounts, [{ type: 'bind', source: '/var/run/docker.sock', target: '/var/run/docker.sock', readOnly: true }]);
  assert.deepEqual(traefik.command?.[0], '--providers.docker=true');
  assert.deepEqual(traefik.logging, { driver: 'json-file', options: { 'max-size': '10m', 'max-file': '3' } });
  assert.deepEqual(whoami.networks, { proxy: { aliases: ['who'] } });
  assert.deepEqual(whoami.resources, { memoryBytes: 64 * 1024 * 1024, nanoCpus: 500_000_000, pidsLimit: 100 });
  assert.deepEqual(whoami.extraHosts, ['host.docker.internal:host-gateway', 'db:10.0.0.5']);
  assert.deepEqual(result.project.networks, { proxy: { name: 'traefik_proxy', external: true, driver: null, labels: {}, internal: false } });
  assert.ok(errors(parse(fixture('traefik.yml'), { stack: 'other' })).some((e) => e.path === 'name' && e.line === 1));
});

test('anchors and merge keys are resolved; an alias bomb is refused', () => {
  const result = ok(parse(fixture('anchors.yml')));
  const { api, worker } = result.project.services;
  assert.ok(api && worker);
  assert.equal(api.restart, 'unless-stopped');
  assert.deepEqual(worker.logging, { driver: 'local', options: {} });
  assert.deepEqual(api.labels, { team: 'web' });
  assert.deepEqual(api.environment, { TZ: 'UTC', LOG_LEVEL: 'debug' });
  assert.deepEqual(worker.environment, { TZ: 'UTC', LOG_LEVEL: 'info' });
  assert.equal(api.stopGracePeriodNs, 30e9);
  assert.deepEqual(worker.mounts, [{ type: 'tmpfs', target: '/tmp', sizeBytes: 64 * 1024 * 1024 }]);
  // A key refused inside an anchor is reported at the anchor's own line.
  const inAnchor = errors(parse('x-d: &d\n  privileged: true\nservices:\n  web:\n    <<: *d\n    image: nginx\n'));
  assert.deepEqual(
    inAnchor.map((e) => [e.path, e.line]),
    [['services.web.privileged', 2]],
  );

  const levels = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]'];
  for (let i = 1; i < 9; i += 1)
    levels.push(
      `${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10)
        .fill(`*${String.fromCharCode(96 + i)}`)
        .join(',')}]`,
    );
  const bomb = errors(parse(`x-bomb:\n${levels.map((l) => `  ${l}`).join('\n')}\nservices:\n  web:\n    image: nginx\n`));
  assert.match(bomb[0]?.message ?? '', /alias/i);
});

test('env_file contents are merged in order, environment wins, quotes read as Compose reads them', () => {
  const files = {
    'common.env': b64('# shared\nexport TZ=UTC\nGREETING="hello\\nworld"\nLITERAL=\'${NOT_EXPANDED}\'\nHOST=${HOSTNAME_VAR}  # inline comment\nLEVEL=info\n'),
    './prod.env': b64('LEVEL=warn\nAPI_KEY=${SECRET_KEY}\n'),
  };
  const yaml = service('    env_file: [common.env, ./prod.env, {path: missing.env, required: false}]\n    environment:\n      TZ: Europe/Berlin\n');
  const result = ok(parse(yaml, { files, env: { HOSTNAME_VAR: 'box' }, secretEnv: { SECRET_KEY: 'k-123456' } }));
  const web = result.project.services.web;
  assert.deepEqual(web?.environment, {
    GREETING: 'hello\nworld',
    HOST: 'box',
    LEVEL: 'warn',
    LITERAL: '${NOT_EXPANDED}',
    TZ: 'Europe/Berlin',
  });
  assert.deepEqual(web?.secretEnvironment, ['API_KEY']);
  assert.deepEqual(result.secretEnv, { API_KEY: 'k-123456' });
  assert.ok(!JSON.stringify(result.project).includes('k-123456'));

  const missing = errors(parse(service('    env_file: absent.env\n')));
  assert.deepEqual(
    missing.map((e) => [e.path, e.line]),
    [['services.web.env_file', 4]],
  );
  assert.match(missing[0]?.message ?? '', /absent\.env/);
});

test('secrets and configs from files given at deploy: secret contents apart, configs in the project', () => {
  const yaml = `services:
  web:
    image: nginx
    secrets: [db_password, {source: api_key, target: key.txt}]
    configs: [nginx_conf, {source: site, target: /etc/nginx/conf.d/site.conf}]
secrets:
  db_password:
    file: ./secrets/db_password.txt
  api_key:
    environment: API_KEY
configs:
  nginx_conf:
    file: ./nginx.conf
  site:
    content: "server { listen 80; }"
`;
  const files = { './secrets/db_password.txt': b64('pa55-word-from-file'), './nginx.conf': b64('worker_processes 1;') };
  const result = ok(parse(yaml, { files, secretEnv: { API_KEY: 'api-key-value' } }));
  const web = result.project.services.web;
  assert.deepEqual(web?.secrets, [
    { source: 'db_password', target: '/run/secrets/db_password' },
    { source: 'api_key', target: '/run/secrets/key.txt' },
  ]);
  assert.deepEqual(web?.configs, [
    { source: 'nginx_conf', target: '/nginx_conf' },
    { source: 'site', target: '/etc/nginx/conf.d/site.conf' },
  ]);
  assert.deepEqual(result.project.secretFiles, ['api_key', 'db_password']);
  assert.deepEqual(result.secretFiles, { db_password: b64('pa55-word-from-file'), api_key: b64('api-key-value') });
  assert.equal(result.project.configs.nginx_conf, b64('worker_processes 1;'));
  assert.equal(result.project.configs.site, b64('server { listen 80; }'));
  const json = JSON.stringify(result.project);
  for (const secret of ['pa55-word-from-file', b64('pa55-word-from-file'), 'api-key-value', b64('api-key-value')]) assert.ok(!json.includes(secret));

  const undeclared = errors(parse(service('    secrets: [nope]\n')));
  assert.deepEqual(
    undeclared.map((e) => [e.path, e.line]),
    [['services.web.secrets[0]', 4]],
  );
});

test('invalid YAML and duplicate keys are refused with their line', () => {
  const bad = errors(parse('services:\n  web:\n    image: nginx\n    ports: [80\n'));
  assert.equal(bad.length > 0, true);
  assert.ok(
    bad.every((e) => typeof e.line === 'number' && e.line >= 4),
    JSON.stringify(bad),
  );
  assert.match(bad[0]?.message ?? '', /invalid YAML/);

  const dup = errors(parse('services:\n  web:\n    image: nginx\n    image: httpd\n'));
  assert.deepEqual(
    dup.map((e) => e.line),
    [4],
  );
  assert.match(dup[0]?.message ?? '', /duplicate key "image"/);

  assert.ok(errors(parse('- just\n- a list\n')).length === 1);
  assert.match(errors(parse(`services: {}\nx-pad: "${'a'.repeat(1024 * 1024)}"\n`))[0]?.message ?? '', /larger than/);
});

test('a schema violation names its path and line', () => {
  const result = errors(parse(service('    ports:\n      - 80\n      - true\n    restart: 5\n    healthcheck:\n      interval: [1]\n')));
  const found = Object.fromEntries(result.map((e) => [e.path, e]));
  assert.equal(found['services.web.ports[1]']?.line, 6);
  assert.match(found['services.web.ports[1]']?.message ?? '', /number|string/);
  assert.equal(found['services.web.restart']?.line, 7);
  assert.equal(found['services.web.healthcheck.interval']?.line, 9);
  const unknown = errors(parse(service('    imagee: typo\n')));
  assert.deepEqual(
    unknown.map((e) => [e.path, e.line]),
    [['services.web.imagee', 4]],
  );
  assert.match(unknown[0]?.message ?? '', /not a Compose Specification key/);
});

test('a key Compose allows but dockfleet does not carry is named with its line, never ignored', () => {
  const result = errors(
    parse(
      'services:\n  web:\n    image: nginx\n    build: .\n    network_mode: host\n    privileged: true\n    deploy:\n      replicas: 3\n    healthcheck:\n      test: ["CMD", "true"]\n      start_interval: 1s\n    volumes:\n      - type: bind\n        source: /srv\n        target: /srv\n        bind:\n          propagation: rshared\nprofiles_are_not_top_level: 1\n',
    ),
  );
  const byPath = new Map(result.map((e) => [e.path, e]));
  for (const [path, line] of [
    ['services.web.build', 4],
    ['services.web.network_mode', 5],
    ['services.web.privileged', 6],
    ['services.web.deploy.replicas', 8],
    ['services.web.healthcheck.start_interval', 11],
    ['services.web.volumes[0].bind.propagation', 17],
  ] as const) {
    assert.equal(byPath.get(path)?.line, line, `${path}: ${JSON.stringify(result)}`);
    assert.match(byPath.get(path)?.message ?? '', /not supported by dockfleet/);
  }
  assert.ok(byPath.has('profiles_are_not_top_level'));
  // x- extensions are allowed anywhere.
  ok(parse('x-top: 1\nservices:\n  web:\n    image: nginx\n    x-note: kept out\n'));
});

test('interpolation follows Compose, and an unset variable without a default is an error naming it and its line', () => {
  const vars = new Map([
    ['SET', { value: 'v', secret: false }],
    ['EMPTY', { value: '', secret: false }],
    ['PW', { value: 's', secret: true }],
  ]);
  const cases: Array<[string, string]> = [
    ['$SET', 'v'],
    ['${SET}', 'v'],
    ['a${SET}b$SET.c', 'avbv.c'],
    ['$$SET', '$SET'],
    ['$${SET}', '${SET}'],
    ['${UNSET:-def}', 'def'],
    ['${EMPTY:-def}', 'def'],
    ['${EMPTY-def}', ''],
    ['${UNSET-def}', 'def'],
    ['${SET:+alt}', 'alt'],
    ['${EMPTY:+alt}', ''],
    ['${EMPTY+alt}', 'alt'],
    ['${UNSET+alt}', ''],
    ['${UNSET:-${SET}-x}', 'v-x'],
    ['${SET:?boom}', 'v'],
    ['price: 5$$', 'price: 5$'],
  ];
  for (const [input, expected] of cases) {
    const out = interpolate(input, vars);
    assert.deepEqual(out.ok ? out.value : out, expected, input);
  }
  const failing: Array<[string, RegExp]> = [
    ['${UNSET}', /UNSET is not set/],
    ['$UNSET', /UNSET is not set/],
    ['${EMPTY:?must be given}', /EMPTY is required: must be given/],
    ['${UNSET?}', /UNSET is required/],
    ['a $ b', /literal \$/],
    ['${SET', /unclosed/],
    ['${1X}', /invalid variable name/],
  ];
  for (const [input, pattern] of failing) {
    const out = interpolate(input, vars);
    assert.equal(out.ok, false, input);
    if (!out.ok) assert.match(out.message, pattern, input);
  }
  const used = interpolate('x${PW}${SET}', vars);
  assert.deepEqual(used.ok && used.secrets, ['PW']);

  const unset = errors(parse(service('    environment:\n      A: ${MISSING_VAR}\n')));
  assert.deepEqual(
    unset.map((e) => [e.path, e.line]),
    [['services.web.environment.A', 5]],
  );
  assert.match(unset[0]?.message ?? '', /MISSING_VAR/);
  const bare = errors(parse(service('    environment: [NOT_GIVEN]\n')));
  assert.match(bare[0]?.message ?? '', /NOT_GIVEN is not set/);
  const given = ok(parse(service('    environment: [GIVEN]\n'), { env: { GIVEN: 'yes' } }));
  assert.deepEqual(given.project.services.web?.environment, { GIVEN: 'yes' });
});

test('secret values never reach the project, its errors, or places outside environment', () => {
  const secret = 'Sup3r-Secret-Value';
  const inCommand = errors(parse(service('    command: ["--password=${PW}"]\n    labels: {token: "${PW}"}\n'), { secretEnv: { PW: secret } }));
  assert.deepEqual(inCommand.map((e) => e.path).sort(), ['services.web.command[0]', 'services.web.labels.token']);
  assert.ok(!JSON.stringify(inCommand).includes(secret));
  const composite = ok(parse(service('    environment:\n      URL: "postgres://u:${PW}@db/x"\n      PLAIN: "${PW:+set}"\n'), { secretEnv: { PW: secret } }));
  assert.deepEqual(composite.project.services.web?.environment, { PLAIN: 'set' });
  assert.deepEqual(composite.secretEnv, { URL: `postgres://u:${secret}@db/x` });
  assert.ok(!JSON.stringify(composite.project).includes(secret));
  const clash = errors(
    parse('services:\n  a:\n    image: x\n    environment: {PW: "${ONE}"}\n  b:\n    image: x\n    environment: {PW: "${TWO}"}\n', { secretEnv: { ONE: 'first-secret', TWO: 'second-secret' } }),
  );
  assert.match(clash[0]?.message ?? '', /different secret value/);
  assert.ok(!JSON.stringify(clash).includes('first-secret') && !JSON.stringify(clash).includes('second-secret'));
  const both = errors(parse(service(''), { env: { PW: 'a' }, secretEnv: { PW: 'b' } }));
  assert.match(both[0]?.message ?? '', /both as plain and as secret/);
});

test('short syntax made long: ports, mounts, devices, durations, sizes; relative binds and unequal ranges refused', () => {
  const result = ok(
    parse(`services:
  web:
    image: nginx
    container_name: web-1
    entrypoint: /bin/sh -c 'echo "a b"'
    user: "1000:1000"
    working_dir: /app
    ports: ["8000-8001:9000-9001", "53:53/udp", "127.0.0.1::80", 3000]
    volumes: ["data:/data:ro", "/srv/cache:/cache", "/anon", {type: tmpfs, target: /scratch, tmpfs: {size: 1g}}]
    devices: ["/dev/fuse", "/dev/ttyUSB0:/dev/ttyS0:rw"]
    cap_add: [NET_ADMIN]
    cap_drop: [ALL]
    cpus: 1.5
    pids_limit: -1
    stop_grace_period: 1m
    healthcheck: {disable: true}
    depends_on: [db]
  db:
    image: postgres
volumes:
  data:
    external: true
`),
  );
  const web = result.project.services.web;
  assert.ok(web);
  assert.equal(web.containerName, 'web-1');
  assert.deepEqual(web.entrypoint, ['/bin/sh', '-c', 'echo "a b"']);
  assert.deepEqual(web.ports, [
    { target: 9000, published: 8000, hostIp: '', protocol: 'tcp' },
    { target: 9001, published: 8001, hostIp: '', protocol: 'tcp' },
    { target: 53, published: 53, hostIp: '', protocol: 'udp' },
    { target: 80, published: null, hostIp: '127.0.0.1', protocol: 'tcp' },
    { target: 3000, published: null, hostIp: '', protocol: 'tcp' },
  ]);
  assert.deepEqual(web.mounts, [
    { type: 'volume', source: 'data', target: '/data', readOnly: true },
    { type: 'bind', source: '/srv/cache', target: '/cache', readOnly: false },
    { type: 'volume', source: null, target: '/anon', readOnly: false },
    { type: 'tmpfs', target: '/scratch', sizeBytes: 1024 ** 3 },
  ]);
  assert.deepEqual(web.devices, [
    { source: '/dev/fuse', target: '/dev/fuse', permissions: 'rwm' },
    { source: '/dev/ttyUSB0', target: '/dev/ttyS0', permissions: 'rw' },
  ]);
  assert.deepEqual(web.resources, { memoryBytes: null, nanoCpus: 1_500_000_000, pidsLimit: null });
  assert.equal(web.stopGracePeriodNs, 60e9);
  assert.deepEqual(web.healthcheck, { disable: true });
  assert.deepEqual(web.dependsOn, { db: { condition: 'service_started' } });
  assert.deepEqual(result.project.volumes.data, { name: 'data', external: true, driver: null, driverOpts: {}, labels: {} });

  const refused = errors(
    parse(
      service(
        '    ports: ["8000-8010:80"]\n    volumes: ["./html:/usr/share/nginx/html", "nope:/x"]\n    restart: on-failure:3\n    labels: {com.docker.compose.project: other}\n    depends_on: [ghost]\n',
      ),
    ),
  );
  assert.deepEqual(
    refused.map((e) => [e.path, e.line]),
    [
      ['services.web.ports[0]', 4],
      ['services.web.volumes[0]', 5],
      ['services.web.volumes[1]', 5],
      ['services.web.restart', 6],
      ['services.web.labels', 7],
      ['services.web.depends_on[0]', 8],
    ],
  );
  assert.match(refused[1]?.message ?? '', /relative host path/);
  assert.match(refused[2]?.message ?? '', /not declared/);
});

test('projectDigest: equal intent gives an equal digest whatever the key order; any change gives another', () => {
  const a = ok(parse(fixture('wordpress.yml'), { secretEnv: { DB_ROOT_PASSWORD: 'x', DB_PASSWORD: 'y' } })).project;
  const reverseKeys = (value: unknown): unknown =>
    Array.isArray(value)
      ? value.map(reverseKeys)
      : value !== null && typeof value === 'object'
        ? Object.fromEntries(
            Object.entries(value)
              .reverse()
              .map(([k, v]) => [k, reverseKeys(v)]),
          )
        : value;
  const shuffled = reverseKeys(a) as typeof a;
  assert.notEqual(JSON.stringify(shuffled), JSON.stringify(a));
  const digests = { DB_PASSWORD: 'd1', DB_ROOT_PASSWORD: 'd2' };
  const base = projectDigest(a, digests);
  assert.match(base, /^[0-9a-f]{64}$/);
  assert.equal(projectDigest(shuffled, { DB_ROOT_PASSWORD: 'd2', DB_PASSWORD: 'd1' }), base);
  assert.notEqual(projectDigest(a, { ...digests, DB_PASSWORD: 'd3' }), base);
  const changed = structuredClone(a);
  (changed.services.db as { image: string }).image = 'mysql:8.0';
  assert.notEqual(projectDigest(changed, digests), base);
});

test('YAML that would change meaning unseen is refused: unresolved tags (!reset), !!binary, __proto__ keys', () => {
  const tag = errors(parse('services:\n  web:\n    image: nginx\n    ports: !reset []\n'));
  assert.deepEqual(
    tag.map((e) => e.line),
    [4],
  );
  assert.match(tag[0]?.message ?? '', /!reset/);
  const binary = errors(parse('services:\n  web:\n    image: nginx\n    labels: !!binary aGk=\n'));
  assert.deepEqual(
    binary.map((e) => [e.path, e.line]),
    [['services.web.labels', 4]],
  );
  const proto = errors(parse('services:\n  web:\n    image: nginx\n  __proto__:\n    image: evil\n'));
  assert.deepEqual(
    proto.map((e) => [e.path, e.line]),
    [['services.__proto__', 4]],
  );
});
