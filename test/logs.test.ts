/**
 * Logs people can read (issue 16): a real `dockfleet hub` under a real pseudo-terminal
 * (util-linux `script`) prints short coloured lines; with stderr a pipe, JSON lines that parse;
 * --log-level picks what shows, on the hub and on the agent; a bad level is a usage error; and
 * secrets are redacted in both formats.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { stripVTControlCharacters } from 'node:util';
import { createLogger } from '../src/lib/logger.ts';
import { NO_ENGINE } from './support/agent-fixture.ts';
import { mintCode, startTestHub } from './support/hub-fixture.ts';
import { spawnDockfleet, type DockfleetProcess } from './support/processes.ts';

const BIN = fileURLToPath(new URL('../bin/dockfleet.js', import.meta.url));
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** A fresh parent dir, so the hub's master key (made beside DATA) goes away with it. */
async function scratch(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dockfleet-logs-'));
  dirs.push(dir);
  return dir;
}

const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** `dockfleet ARGS` with a pseudo-terminal as its stdin, stdout and stderr. */
function underTerminal(args: string[]): { child: ChildProcess; output: () => string; waitFor: (re: RegExp, ms?: number) => Promise<void>; stop: () => Promise<void> } {
  const env: NodeJS.ProcessEnv = { ...process.env, TERM: 'xterm-256color' };
  delete env.DOCKFLEET_LOG_LEVEL;
  delete env.DOCKFLEET_LOG_FORMAT;
  delete env.NO_COLOR;
  const command = [process.execPath, BIN, ...args].map(quote).join(' ');
  const child = spawn('script', ['-qfec', command, '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    output: () => out,
    async waitFor(re, ms = 30_000) {
      const deadline = Date.now() + ms;
      while (!re.test(stripVTControlCharacters(out))) {
        if (child.exitCode !== null) throw new Error(`exited (${child.exitCode}) before ${re}: ${out.slice(-800)}`);
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${re}: ${out.slice(-800)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      // `script` hands SIGTERM to the hub it runs, and ends when the hub does.
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 8_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

function jsonLines(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        throw new Error(`a log line on a pipe is not JSON: ${l}`);
      }
    });
}

async function waitForLog(proc: DockfleetProcess, pred: (line: Record<string, unknown>) => boolean, ms = 15_000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const hit = jsonLines(proc.stderr()).find(pred);
    if (hit) return hit;
    if (Date.now() > deadline) throw new Error(`no such log line within ${ms} ms; stderr: ${proc.stderr().slice(-800)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('readable logs', { timeout: 180_000 }, () => {
  test('script(1) is here to give the hub a real terminal', () => {
    assert.equal(spawnSync('script', ['--version']).status, 0, 'util-linux script is needed for the terminal tests');
  });

  test('on a terminal the hub prints short coloured human lines, not JSON', async () => {
    const hub = underTerminal(['hub', '--data', join(await scratch(), 'data'), '--listen', '127.0.0.1:0']);
    try {
      await hub.waitFor(/hub ready https:\/\//);
      await hub.waitFor(/database migrations applied/);
      const raw = hub.output();
      assert.doesNotMatch(raw, /\{"level":/, 'no JSON records on a terminal');
      assert.match(raw, /\x1b\[3\dm/, 'levels and messages are coloured');
      const plain = stripVTControlCharacters(raw).split(/\r?\n/);
      const line = plain.find((l) => l.includes('database migrations applied'));
      // `[12:04:05.120] INFO: hub: database migrations applied {"applied":[…]}`: time of day, level, process, message.
      assert.match(line ?? '', /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: hub: database migrations applied /);
      assert.doesNotMatch(line!, /"(pid|hostname)"/, 'no pid/hostname noise');
    } finally {
      await hub.stop();
    }
  });

  test('--log-format json on a terminal forces JSON lines', async () => {
    const hub = underTerminal(['hub', '--data', join(await scratch(), 'data'), '--listen', '127.0.0.1:0', '--log-format', 'json']);
    try {
      await hub.waitFor(/hub ready https:\/\//);
      await hub.waitFor(/database migrations applied/);
      const record = stripVTControlCharacters(hub.output())
        .split(/\r?\n/)
        .find((l) => l.includes('database migrations applied'))!;
      assert.equal(JSON.parse(record).msg, 'database migrations applied');
    } finally {
      await hub.stop();
    }
  });

  test('with stderr a pipe, every log line is JSON that parses; --log-level debug shows what info does not', async () => {
    const info = spawnDockfleet(['hub', '--data', join(await scratch(), 'data'), '--listen', '127.0.0.1:0']);
    const debug = spawnDockfleet(['hub', '--data', join(await scratch(), 'data'), '--listen', '127.0.0.1:0', '--log-level', 'debug']);
    try {
      await Promise.all([info.waitForLine(/hub ready/, 60_000), debug.waitForLine(/hub ready/, 60_000)]);
      const seen = await waitForLog(debug, (l) => l.msg === 'configuration read');
      assert.equal(seen.level, 20, 'a debug record');
      assert.equal(seen.name, 'hub');
      const infoLines = jsonLines(info.stderr());
      assert.ok(
        infoLines.some((l) => l.msg === 'database migrations applied'),
        'info records are there',
      );
      assert.ok(
        infoLines.every((l) => typeof l.level === 'number' && l.level >= 30),
        'no debug record at info',
      );
      assert.ok(!info.stderr().includes('\x1b['), 'no colour escapes in JSON');
    } finally {
      await Promise.all([info.stop(), debug.stop()]);
    }
  });

  test('a bad level or format is a usage error: exit 2 and one line', async () => {
    // Each would start (and be stopped by its timeout) if the value were taken.
    const dir = await scratch();
    const hub = ['hub', '--data', join(dir, 'data'), '--listen', '127.0.0.1:0'];
    const cases: Array<{ args: string[]; env?: NodeJS.ProcessEnv; names: RegExp }> = [
      { args: [...hub, '--log-level', 'nonsense'], names: /--log-level must be one of trace\|debug\|info\|warn\|error\|fatal, got "nonsense"/ },
      { args: [...hub, '--log-format', 'fancy'], names: /--log-format must be one of json\|pretty/ },
      { args: hub, env: { DOCKFLEET_LOG_LEVEL: 'loud' }, names: /DOCKFLEET_LOG_LEVEL must be one of/ },
      { args: ['agent', '--hub', 'https://127.0.0.1:9', '--state', join(dir, 'agent'), '--log-level', 'nonsense'], names: /--log-level must be one of/ },
    ];
    await Promise.all(
      cases.map(async (c) => {
        const proc = spawnDockfleet(c.args, c.env);
        const timer = setTimeout(() => void proc.stop(), 30_000);
        after(() => clearTimeout(timer));
        const { code } = await proc.exited;
        assert.equal(code, 2, `${c.args.join(' ')}: exit 2 (stderr: ${proc.stderr()})`);
        const lines = proc.stderr().trim().split('\n');
        assert.equal(lines.length, 1, `one line: ${proc.stderr()}`);
        assert.match(lines[0]!, c.names);
      }),
    );
  });

  test('the agent honours --log-level', async () => {
    const hub = await startTestHub();
    const state = await scratch();
    const run = async (name: string, level: string): Promise<DockfleetProcess> => {
      const code = await mintCode(hub, name);
      const dir = join(state, name);
      return spawnDockfleet(['agent', '--hub', hub.url, '--code', code, '--state', dir, '--docker', NO_ENGINE, '--policy', join(dir, 'no-policy.json'), '--log-level', level]);
    };
    const [loud, quiet] = await Promise.all([run('loud', 'debug'), run('quiet', 'warn')]);
    try {
      await Promise.all([loud.waitForLine(/agent loud connected/, 60_000), quiet.waitForLine(/agent quiet connected/, 60_000)]);
      const config = await waitForLog(loud, (l) => l.msg === 'configuration read');
      assert.equal(config.level, 20);
      assert.ok(!JSON.stringify(config).includes('code'), 'the configuration line never carries the code');
      assert.ok(
        jsonLines(loud.stderr()).some((l) => l.msg === 'enrolled'),
        'info records show at debug',
      );
      const quietLines = jsonLines(quiet.stderr());
      assert.ok(
        quietLines.every((l) => (l.level as number) >= 40),
        `only warnings and worse at warn: ${quiet.stderr()}`,
      );
      assert.ok(!quietLines.some((l) => l.msg === 'enrolled'));
    } finally {
      await Promise.all([loud.stop(), quiet.stop()]);
      await hub.stop();
    }
  });

  test('secrets are redacted in pretty lines as in JSON lines', async () => {
    for (const format of ['pretty', 'json'] as const) {
      const stream = Object.assign(new PassThrough(), { isTTY: true });
      let text = '';
      stream.on('data', (c: Buffer) => (text += c.toString()));
      const log = createLogger('hub', { level: 'info', format }, { stream });
      log.info({ node: 'edge-1', token: 'tok-s3cret', req: { headers: { authorization: 'Bearer auth-s3cret', cookie: 'sid=cookie-s3cret' } }, nested: { password: 'pw-s3cret' } }, 'agent connected');
      await new Promise((r) => setImmediate(r));
      assert.match(text, /agent connected/, `${format}: the line is written`);
      assert.doesNotMatch(text, /s3cret/, `${format}: no secret in ${text}`);
      assert.match(text, /\[redacted\]/);
      if (format === 'pretty') {
        assert.match(text, /\x1b\[/, 'pretty on a terminal is coloured');
        assert.doesNotMatch(text, /"level":/);
      } else {
        assert.equal(JSON.parse(text.trim()).node, 'edge-1');
      }
    }
  });
});
