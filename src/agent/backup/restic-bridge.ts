/**
 * `dockfleet agent restic-bridge --state DIR --repo NAME`: the program restic's rclone backend
 * spawns for the "hub" repository (hub-repo.ts builds the arguments). restic speaks HTTP/2 on its
 * stdin and stdout; this connects to the running agent's `<state>/restic.sock`, names the
 * repository, and from the agent's ok on copies bytes both ways until either side ends. It parses
 * nothing and holds no secret: restic's password never leaves restic. Errors go to stderr, which
 * restic prints prefixed with "rclone:".
 */
import net from 'node:net';
import { parseArgs } from 'node:util';
import { BRIDGE_LINE_MAX, isRepoName, parseBridgeAnswer } from '../../protocol/restic-reverse.ts';
import { resticSocketPath } from './hub-repo.ts';

export const RESTIC_BRIDGE_USAGE = `dockfleet agent restic-bridge --state DIR --repo NAME
  the program restic runs for a repository at the hub (restic -r rclone:NAME -o rclone.program=…);
  relays restic's requests through this host's running agent (DIR/restic.sock)`;

/** After restic hangs up, how long the relay may take to wind down before the bridge just exits. */
const WIND_DOWN_MS = 5_000;

function fail(message: string): never {
  throw new Error(`restic bridge: ${message}`);
}

export async function runResticBridge(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args, strict: true, allowPositionals: true, options: { state: { type: 'string' }, repo: { type: 'string' } } });
  // restic appends what follows `rclone:` in its -r to the program's arguments.
  const repo = values.repo ?? positionals[0];
  if (!values.state || !repo) fail('needs --state DIR and --repo NAME');
  if (positionals.length > 1 || (positionals[0] !== undefined && positionals[0] !== repo)) fail(`restic asked for ${JSON.stringify(positionals.join(' '))}, but --repo is ${repo}`);
  if (!isRepoName(repo)) fail(`not a repository name: ${JSON.stringify(repo)}`);

  const sock = net.connect(resticSocketPath(values.state));
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', (err) =>
      reject(new Error(`restic bridge: no agent at ${resticSocketPath(values.state!)} (${(err as NodeJS.ErrnoException).code ?? err.message}); is \`dockfleet agent\` running with this --state?`)),
    );
  });
  sock.write(`${JSON.stringify({ repo })}\n`);
  const rest = await readAnswer(sock);

  // stdout as a libuv pipe of its own: Node makes process.stdout blocking on pipes.
  const out = new net.Socket({ fd: 1, readable: false, writable: true });
  const input = process.stdin;
  out.on('error', () => sock.destroy());
  input.on('error', () => sock.destroy());
  if (rest.length > 0) out.write(rest);
  input.pipe(sock);
  sock.pipe(out);
  await new Promise<void>((resolve) => {
    sock.once('close', () => resolve());
    // restic closes its ends when it is done; the agent winds the relay down from there.
    input.once('end', () => setTimeout(resolve, WIND_DOWN_MS).unref());
  });
  out.end();
  sock.destroy();
  input.destroy();
}

/** Waits for the agent's answer line; returns what came after it, or throws its refusal. */
function readAnswer(sock: net.Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let got = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      got = Buffer.concat([got, chunk]);
      const end = got.indexOf(0x0a);
      if (end < 0) {
        if (got.length > BRIDGE_LINE_MAX) finish(new Error('restic bridge: the agent answered with an overlong line'));
        return;
      }
      const answer = parseBridgeAnswer(got.subarray(0, end).toString('utf8'));
      if (!answer) return finish(new Error('restic bridge: the agent answered with something unreadable'));
      if (!answer.ok) return finish(new Error(`restic bridge: the agent refused: ${answer.message}`));
      finish(null, got.subarray(end + 1));
    };
    const onClose = (): void => finish(new Error('restic bridge: the agent hung up before answering'));
    const finish = (err: Error | null, rest?: Buffer): void => {
      sock.off('data', onData);
      sock.off('close', onClose);
      sock.pause();
      if (err) reject(err);
      else resolve(rest ?? Buffer.alloc(0));
    };
    sock.on('data', onData);
    sock.once('close', onClose);
    sock.on('error', () => {});
  });
}
