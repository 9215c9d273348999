/** The host's own audit log: a hash chain in the agent's state dir that `dockfleet agent audit`
 * shows and verifies with no hub; an edited, removed or reordered entry is named by line and seq;
 * a write cut off by a crash is kept and recorded. End to end with a real engine: a container stop
 * through the hub and a policy refusal both land in the host's log, and the hub shows the head. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { HostAuditLog } from '../src/agent/audit/host-audit.ts';
import { entryLine } from '../src/agent/audit/entry-line.ts';
import { scanEntryLine } from '../src/agent/audit/scan-entry-line.ts';
import { verifyAuditFile } from '../src/agent/audit/verify-audit.ts';
import { runContainer } from './support/engines.ts';
import { waitFor } from './support/hub-fixture.ts';
import { startNodeRig, stopNodeRig, type NodeRig } from './support/node-rig.ts';
import { spawnDockfleet } from './support/processes.ts';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A fresh state dir holding a log of `n` entries (written by the real HostAuditLog). */
function logOf(n: number): { dir: string; path: string; lines: () => string[]; write: (lines: string[]) => void } {
  const dir = mkdtempSync(join(tmpdir(), 'dockfleet-host-audit-'));
  dirs.push(dir);
  const audit = HostAuditLog.open(dir);
  for (let i = 1; i <= n; i++)
    audit.append({ op: `POST /containers/c${i}/stop`, target: `c${i}`, result: i % 3 === 0 ? 'refused' : 'ok', user: 'ann', ...(i % 3 === 0 ? { status: 403, reason: 'privileged' } : {}) });
  audit.close();
  const path = join(dir, 'audit.log');
  return {
    dir,
    path,
    lines: () => readFileSync(path, 'utf8').split('\n').slice(0, -1),
    write: (lines) => writeFileSync(path, `${lines.join('\n')}\n`),
  };
}

async function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const proc = spawnDockfleet(args);
  const { code } = await proc.exited;
  return { code, stdout: proc.stdout(), stderr: proc.stderr() };
}

describe('the chain', () => {
  test('appended entries chain from GENESIS, and verify walks them', async () => {
    const log = logOf(5);
    const report = await verifyAuditFile(log.path);
    assert.equal(report.problem, null);
    assert.equal(report.entries.length, 5);
    assert.deepEqual(
      report.entries.map((e) => e.seq),
      [1, 2, 3, 4, 5],
    );
    assert.equal(report.entries[0]!.prev, '0'.repeat(64));
    assert.equal(report.entries[1]!.prev, report.entries[0]!.hash);
    assert.equal(report.entries[2]!.result, 'refused');
    // Reopened, the log continues the same chain.
    const audit = HostAuditLog.open(log.dir);
    assert.deepEqual(audit.head(), { seq: 5, hash: report.entries[4]!.hash });
    audit.append({ op: 'DELETE /volumes/v', target: 'v', result: 'failed' });
    audit.close();
    const again = await verifyAuditFile(log.path);
    assert.equal(again.problem, null);
    assert.equal(again.entries[5]!.prev, report.entries[4]!.hash);
  });

  test('an edited field is named by its line: hash mismatch', async () => {
    const log = logOf(6);
    const lines = log.lines();
    lines[3] = lines[3]!.replace('"user":"ann"', '"user":"bob"');
    log.write(lines);
    const { problem } = await verifyAuditFile(log.path);
    assert.equal(problem?.kind, 'edited');
    assert.equal(problem?.line, 4);
    assert.equal(problem?.seq, 4);
  });

  test('a removed line is a seq gap at the line after it', async () => {
    const log = logOf(6);
    const lines = log.lines();
    lines.splice(2, 1);
    log.write(lines);
    const { problem } = await verifyAuditFile(log.path);
    assert.equal(problem?.kind, 'seq-gap');
    assert.equal(problem?.line, 3);
    assert.equal(problem?.seq, 4);
    assert.match(problem!.message, /^line 3 \(seq 4\): seq gap: expected seq 3/);
  });

  test('two swapped lines are named at the first of them', async () => {
    const log = logOf(6);
    const lines = log.lines();
    [lines[1], lines[2]] = [lines[2]!, lines[1]!];
    log.write(lines);
    const { problem } = await verifyAuditFile(log.path);
    assert.equal(problem?.kind, 'seq-gap');
    assert.equal(problem?.line, 2);
    assert.equal(problem?.seq, 3);
  });

  test('an entry rewritten with a fresh hash still breaks the chain at the next one (prev mismatch)', async () => {
    const log = logOf(4);
    const lines = log.lines();
    const forged = JSON.parse(lines[1]!);
    forged.target = 'someone-else';
    lines[1] = entryLine(forged).line;
    log.write(lines);
    const { problem } = await verifyAuditFile(log.path);
    assert.equal(problem?.kind, 'prev-mismatch');
    assert.equal(problem?.line, 3);
  });

  test('a last line cut off mid-write: verify says torn; the next open records the tear and the chain goes on', async () => {
    const log = logOf(3);
    const whole = log.lines();
    // What a crash in the middle of write(2) leaves: the start of a fourth entry, no newline.
    appendFileSync(log.path, whole[2]!.slice(0, 40));
    const torn = await verifyAuditFile(log.path);
    assert.equal(torn.problem?.kind, 'torn');
    assert.equal(torn.problem?.line, 4);
    const audit = HostAuditLog.open(log.dir);
    assert.equal(audit.tears.length, 1);
    assert.equal(audit.tears[0]!.line, 4);
    assert.equal(audit.tears[0]!.bytes, 40);
    audit.append({ op: 'POST /containers/x/start', target: 'x', result: 'ok' });
    audit.close();
    const lines = log.lines();
    assert.equal(lines[3], whole[2]!.slice(0, 40), 'the torn bytes are kept as written');
    const marker = JSON.parse(lines[4]!);
    assert.equal(marker.op, 'audit torn-write');
    assert.equal(marker.seq, 4);
    assert.equal(marker.tear.line, 4);
    const report = await verifyAuditFile(log.path);
    assert.equal(report.problem, null);
    assert.deepEqual(
      report.tears.map((t) => t.line),
      [4],
    );
    assert.equal(report.head.seq, 5);
    // The torn line edited afterwards no longer matches its marker.
    assert.notEqual(lines[3]!.indexOf('"op"'), -1);
    lines[3] = lines[3]!.replace('"op"', '"OP"');
    log.write(lines);
    assert.equal((await verifyAuditFile(log.path)).problem?.kind, 'tear-mismatch');
  });

  test('append never throws: a log whose file went away is reported and recreated', () => {
    const log = logOf(1);
    const audit = HostAuditLog.open(log.dir);
    rmSync(log.dir, { recursive: true, force: true });
    assert.doesNotThrow(() => audit.append({ op: 'x', target: 'y', result: 'ok' }));
    audit.close();
  });
});

describe('the line form: canonical JSON, hash last, read by a strict scan', () => {
  /** Text that looks like members: a scan that matched `"seq":` anywhere would read these. */
  const tricky = [
    `","seq":1,"prev":"${'f'.repeat(64)}"`,
    ',"seq":99,',
    '\\","seq":7,"x":"\\',
    'quote " backslash \\ slash / tab \t nl \n cr \r ff \f bs \b nul \u0000 unit \u001f del \u007f',
    'ünïcødé ✓ 𝄞 emoji 🙂 line-sep \u2028 para-sep \u2029',
    'lone high \ud83d then text, lone low \ude00 at the end',
  ];

  test('entries whose texts hold `"seq":` and `"prev":` text, escapes and odd characters verify, and the scan reads what JSON.parse reads', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dockfleet-host-audit-form-'));
    dirs.push(dir);
    const audit = HostAuditLog.open(dir);
    for (const [i, text] of tricky.entries()) {
      audit.append({ op: `POST /x${text}`, target: text, result: 'refused', status: -i, reason: text, user: text, key: text, ref: text });
    }
    audit.close();
    const path = join(dir, 'audit.log');
    const report = await verifyAuditFile(path);
    assert.equal(report.problem, null, report.problem?.message);
    assert.equal(report.count, tricky.length);
    const lines = readFileSync(path, 'utf8').split('\n').slice(0, -1);
    for (const [i, line] of lines.entries()) {
      const parsed = JSON.parse(line);
      assert.equal(parsed.reason, tricky[i]);
      assert.match(line, /,"hash":"[0-9a-f]{64}"\}$/, 'the hash is the last member');
      const scanned = scanEntryLine(Buffer.from(line));
      assert.ok(scanned, `line ${i + 1} scans`);
      assert.deepEqual({ seq: scanned.seq, prev: scanned.prev, hash: scanned.hash, ok: scanned.hashOk }, { seq: parsed.seq, prev: parsed.prev, hash: parsed.hash, ok: true });
    }
  });

  test('random texts: every written line scans back to the seq and prev JSON.parse reads', () => {
    let seed = 13;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const pieces = ['"', '\\', '"seq":', ',"prev":"', '{', '}', ':', ',', '\u0000', '\n', '\ud800', '\udc00', '🙂', 'é', 'a', ' '];
    let prev = '0'.repeat(64);
    for (let seq = 1; seq <= 500; seq++) {
      const text = Array.from({ length: rand(24) }, () => pieces[rand(pieces.length)]).join('');
      const { line, hash } = entryLine({ seq, time: 't', op: text, target: text, result: 'ok', reason: text, prev });
      const scanned = scanEntryLine(Buffer.from(line));
      const parsed = JSON.parse(line);
      assert.ok(scanned, `scans: ${JSON.stringify(text)}`);
      assert.deepEqual([scanned.seq, scanned.prev, scanned.hash, scanned.hashOk], [parsed.seq, parsed.prev, hash, true]);
      prev = hash;
    }
  });

  // Each rewrites line 2 in another form that JSON.parse reads as the same kind of entry, and gives
  // it a hash over its own new bytes: only the form is wrong, and verify must say edited.
  const otherForms: [string, (body: string) => string][] = [
    [
      'JSON.stringify order (seq first)',
      (body) => {
        const { seq, ...rest } = JSON.parse(body);
        return JSON.stringify({ seq, ...rest });
      },
    ],
    ['a space after a colon', (body) => body.replace('"seq":', '"seq": ')],
    ['seq twice (JSON.parse keeps the last)', (body) => body.replace(/"seq":(\d+)/, '"seq":1,"seq":$1')],
    ['seq with an exponent', (body) => body.replace(/"seq":(\d+)/, '"seq":$1e0')],
    ['seq with a fraction', (body) => body.replace(/"seq":(\d+)/, '"seq":$1.0')],
    ['an escaped slash', (body) => body.replace('POST /', 'POST \\/')],
    ['a needless \\u escape', (body) => body.replace('POST', '\\u0050OST')],
    ['an uppercase hex escape', (body) => body.replace('\\u001f', '\\u001F')],
    ['a surrogate pair escaped', (body) => body.replace('🙂', '\\ud83d\\ude42')],
  ];
  for (const [name, rewrite] of otherForms) {
    test(`an entry rewritten in another form is reported as edited: ${name}`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'dockfleet-host-audit-other-'));
      dirs.push(dir);
      const audit = HostAuditLog.open(dir);
      for (let i = 1; i <= 3; i++) audit.append({ op: `POST /c${i}/stop`, target: 'c\u001f🙂', result: 'ok' });
      audit.close();
      const path = join(dir, 'audit.log');
      const lines = readFileSync(path, 'utf8').split('\n').slice(0, -1);
      const cut = lines[1]!.lastIndexOf(',"hash":');
      const body = rewrite(`${lines[1]!.slice(0, cut)}}`);
      assert.notEqual(body, `${lines[1]!.slice(0, cut)}}`, 'the rewrite changed something');
      const hash = createHash('sha256').update(body).digest('hex');
      lines[1] = `${body.slice(0, -1)},"hash":"${hash}"}`;
      assert.equal(JSON.parse(lines[1]).seq, 2, 'JSON.parse still reads the entry');
      writeFileSync(path, `${lines.join('\n')}\n`);
      const { problem } = await verifyAuditFile(path);
      assert.equal(problem?.kind, 'edited');
      assert.equal(problem?.line, 2);
    });
  }
});

describe('dockfleet agent audit', () => {
  test('shows a table, --json one array, --verify exit 0; an edit makes --verify exit 1 naming line and seq', async () => {
    const log = logOf(4);
    const shown = await cli(['agent', 'audit', '--state', log.dir]);
    assert.equal(shown.code, 0);
    assert.match(shown.stdout, /^SEQ\s+TIME\s+RESULT\s+OPERATION\s+TARGET\s+USER/);
    assert.match(shown.stdout, /\n3\s+\S+\s+refused\s+POST \/containers\/c3\/stop\s+c3\s+ann/);
    const json = await cli(['agent', 'audit', '--state', log.dir, '--json']);
    assert.equal(json.code, 0);
    const entries = JSON.parse(json.stdout);
    assert.ok(Array.isArray(entries));
    assert.equal(entries.length, 4);
    assert.deepEqual(Object.keys(entries[2]).sort(), ['hash', 'op', 'prev', 'reason', 'result', 'seq', 'status', 'target', 'time', 'user']);
    const ok = await cli(['agent', 'audit', '--state', log.dir, '--verify']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^ok: 4 entries, the chain holds to seq 4/);

    const lines = log.lines();
    lines[1] = lines[1]!.replace('"result":"ok"', '"result":"refused"');
    log.write(lines);
    const bad = await cli(['agent', 'audit', '--state', log.dir, '--verify']);
    assert.equal(bad.code, 1);
    assert.equal(bad.stderr.trim().split('\n').length, 1);
    assert.match(bad.stderr, /line 2 \(seq 2\): hash mismatch: the entry was edited/);
    const badJson = await cli(['agent', 'audit', '--state', log.dir, '--verify', '--json']);
    assert.equal(badJson.code, 1);
    const verdict = JSON.parse(badJson.stdout);
    assert.equal(verdict.ok, false);
    assert.deepEqual({ kind: verdict.problem.kind, line: verdict.problem.line, seq: verdict.problem.seq }, { kind: 'edited', line: 2, seq: 2 });
  });

  test('no log in the state dir is a clear error, not an empty success', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dockfleet-host-audit-none-'));
    dirs.push(dir);
    const res = await cli(['agent', 'audit', '--state', dir, '--verify']);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /no audit log at .*audit\.log/);
  });
});

describe('an agent with a real engine', () => {
  let rig: NodeRig | undefined;
  before(async () => {
    rig = await startNodeRig('host-audit', 'audited');
  });
  after(async () => {
    if (rig) await stopNodeRig(rig);
  });

  test('a container stop through the hub is in the host log with the user the hub named; a policy refusal as refused; the hub shows the head', async () => {
    const { hub, engine, dir } = rig!;
    const id = await runContainer(engine, { name: 'audited-one' });
    const stop = await hub.api('POST', `/docker/nodes/audited/v1.41/containers/${id}/stop?t=0`);
    assert.equal(stop.status, 204, JSON.stringify(stop.json));
    const refused = await hub.api('POST', '/docker/nodes/audited/v1.41/containers/create?name=evil', { Image: 'busybox', HostConfig: { Privileged: true } });
    assert.equal(refused.status, 403);
    // A read is not recorded.
    assert.equal((await hub.api('GET', '/docker/nodes/audited/v1.41/containers/json')).status, 200);

    const path = join(dir, 'agent', 'audit.log');
    const report = await waitFor(
      async () => {
        const r = await verifyAuditFile(path).catch(() => null);
        return r?.entries.some((e) => e.result === 'refused') ? r : null;
      },
      10_000,
      'both calls in the host log',
    );
    assert.equal(report.problem, null);
    const stopped = report.entries.find((e) => e.op === `POST /containers/${id}/stop`);
    assert.ok(stopped, `the stop is recorded: ${JSON.stringify(report.entries)}`);
    assert.equal(stopped.result, 'ok');
    assert.equal(stopped.target, id);
    assert.ok(stopped.user, 'the user the hub named is recorded');
    const refusal = report.entries.find((e) => e.op === 'POST /containers/create');
    assert.equal(refusal?.result, 'refused');
    assert.equal(refusal?.status, 403);
    assert.match(String(refusal?.reason), /privileged/);
    assert.ok(!report.entries.some((e) => e.op.startsWith('GET ')), 'reads are not recorded');

    const verified = await cli(['agent', 'audit', '--state', join(dir, 'agent'), '--verify']);
    assert.equal(verified.code, 0, verified.stderr);

    const shown = await waitFor(
      async () => {
        const nodes = await hub.api('GET', '/api/v1/nodes');
        const node = (nodes.json as Array<{ name: string; hostAudit: { seq: number; hash: string } | null }>).find((n) => n.name === 'audited');
        return node?.hostAudit?.seq === report.head.seq ? node.hostAudit : null;
      },
      10_000,
      'the host audit head in GET /api/v1/nodes',
    );
    assert.deepEqual(shown, report.head);
  });
});
