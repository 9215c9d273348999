/** The stock docker CLI (and docker-compose) as a user runs them, against the hub. */
import { spawn } from 'node:child_process';

export const DOCKER_BIN = process.env.DOCKER_CLI ?? '/usr/local/bin/docker';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  stdoutBytes: Buffer;
}

/** Runs a command with `env` added; `input` is piped to stdin and closed. */
export function run(bin: string, args: string[], env: NodeJS.ProcessEnv, opts: { input?: Buffer | string; timeoutMs?: number; cwd?: string } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'], ...(opts.cwd ? { cwd: opts.cwd } : {}) });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${bin} ${args.join(' ')} did not finish in ${opts.timeoutMs ?? 60_000} ms; stderr: ${Buffer.concat(err).toString()}`));
    }, opts.timeoutMs ?? 60_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      const stdoutBytes = Buffer.concat(out);
      resolve({ code, stdout: stdoutBytes.toString(), stderr: Buffer.concat(err).toString(), stdoutBytes });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input);
  });
}

/** Parses `export K=V` lines (what `dockfleet docker-env` prints). */
export function parseExports(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^export ([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) env[m[1]!] = m[2]!;
  }
  return env;
}
