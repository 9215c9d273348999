/** A real ACME server for tests: Debian's `pebble`, with `pebble-challtestsrv` as its DNS
 * (every name is 127.0.0.1 unless a test points one elsewhere). Pebble validates HTTP-01 at
 * `httpPort` and TLS-ALPN-01 at `tlsPort` of that address, so those are the hub's `--edge-http`
 * and `--edge-listen` ports. Its own HTTPS certificate is made in a temp dir (`caFile` is what
 * the hub's `--acme-ca` trusts); the root it issues under is read from its management port and
 * changes each time pebble starts. Only the processes started here are signalled, by pid. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrCreateHubPki } from '../../src/hub/pki.ts';
import { SecretBox } from '../../src/hub/secret-box.ts';
import { freePort } from './processes.ts';

export const PEBBLE = '/usr/bin/pebble';
export const CHALLTESTSRV = '/usr/bin/pebble-challtestsrv';

/** Why pebble tests cannot run here, or null. Under CI a missing pebble is a failure, not a skip. */
export function pebbleMissing(): string | null {
  const missing = [PEBBLE, CHALLTESTSRV].filter((p) => !existsSync(p));
  if (missing.length === 0) return null;
  const reason = `${missing.join(' and ')} not installed (apt-get install pebble)`;
  if (process.env.CI) throw new Error(`CI needs pebble: ${reason}`);
  return reason;
}

export interface PebbleOptions {
  /** Where pebble validates HTTP-01 (the hub's --edge-http port). */
  httpPort: number;
  /** Where pebble validates TLS-ALPN-01 (the hub's --edge-listen port). */
  tlsPort: number;
}

export interface Pebble {
  readonly directoryUrl: string;
  /** Pebble's own HTTPS certificate authority (for --acme-ca). */
  readonly caFile: string;
  readonly caPem: string;
  /** The root pebble issues under since it last started (trust only this to check an issued chain). */
  issuingRoot(): Promise<string>;
  /** Makes challtestsrv answer HOST with ADDRESS (A record) instead of 127.0.0.1. */
  pointHost(host: string, address: string): Promise<void>;
  /** Back to the default answer (127.0.0.1) for HOST. */
  unpointHost(host: string): Promise<void>;
  /** Stops pebble alone (the ACME server becomes unreachable); `start()` brings it back on the same ports. */
  stopServer(): Promise<void>;
  startServer(): Promise<void>;
  /** pebble's output so far (for a failing test's message). */
  log(): string;
  close(): Promise<void>;
}

interface Child {
  process: ChildProcess;
  exited: Promise<void>;
  output: () => string;
}

export async function startPebble(opts: PebbleOptions): Promise<Pebble> {
  const dir = await mkdtemp(join(tmpdir(), 'dockfleet-pebble-'));
  const children: Child[] = [];
  let server: Child | null = null;
  const close = async (): Promise<void> => {
    await Promise.all(children.map(stopChild));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    // Pebble's HTTPS identity: a private CA and a 127.0.0.1 certificate (the hub's own PKI code makes both).
    const pki = await loadOrCreateHubPki(join(dir, 'tls'), { hosts: ['127.0.0.1', 'localhost'], secrets: new SecretBox(Buffer.alloc(32, 1)) });
    const caFile = join(dir, 'ca.pem');
    await writeFile(caFile, pki.caCertPem);
    await writeFile(join(dir, 'cert.pem'), pki.serverCertPem);
    await writeFile(join(dir, 'key.pem'), pki.serverKeyPem, { mode: 0o600 });

    const [acmePort, managementPort, dnsPort, challManagementPort] = await distinctFreePorts(4);
    await writeFile(
      join(dir, 'pebble.json'),
      JSON.stringify({
        pebble: {
          listenAddress: `127.0.0.1:${acmePort}`,
          managementListenAddress: `127.0.0.1:${managementPort}`,
          certificate: join(dir, 'cert.pem'),
          privateKey: join(dir, 'key.pem'),
          httpPort: opts.httpPort,
          tlsPort: opts.tlsPort,
          ocspResponderURL: '',
          externalAccountBindingRequired: false,
        },
      }),
    );

    const dns = spawnChild(
      CHALLTESTSRV,
      ['-dns01', `127.0.0.1:${dnsPort}`, '-management', `127.0.0.1:${challManagementPort}`, '-http01', '', '-https01', '', '-tlsalpn01', '', '-defaultIPv4', '127.0.0.1', '-defaultIPv6', ''],
      {},
    );
    children.push(dns);
    const challtestsrv = `http://127.0.0.1:${challManagementPort}`;
    await waitUntil(() => plainPost(`${challtestsrv}/clear-a`, { host: 'ready.invalid' }), 10_000, 'pebble-challtestsrv', dns);

    const directoryUrl = `https://127.0.0.1:${acmePort}/dir`;
    const management = `https://127.0.0.1:${managementPort}`;
    const startServer = async (): Promise<void> => {
      if (server) return;
      // No random sleeps before validating, no valid nonce rejected, no authorization reused
      // (every order is validated, so a refused challenge shows on a renewal too).
      server = spawnChild(PEBBLE, ['-config', join(dir, 'pebble.json'), '-dnsserver', `127.0.0.1:${dnsPort}`], { PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0' });
      children.push(server);
      const started = server;
      await waitUntil(() => httpsGet(directoryUrl, pki.caCertPem), 15_000, 'pebble', started);
    };
    await startServer();

    return {
      directoryUrl,
      caFile,
      caPem: pki.caCertPem,
      issuingRoot: () => httpsGet(`${management}/roots/0`, pki.caCertPem),
      async pointHost(host, address) {
        await plainPost(`${challtestsrv}/add-a`, { host, addresses: [address] });
      },
      async unpointHost(host) {
        await plainPost(`${challtestsrv}/clear-a`, { host });
      },
      async stopServer() {
        const running = server;
        server = null;
        if (running) await stopChild(running);
      },
      startServer,
      log: () => children.map((c) => c.output()).join('\n--\n'),
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

function spawnChild(bin: string, args: string[], env: Record<string, string>): Child {
  const child = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (c: Buffer): void => {
    out = (out + c.toString()).slice(-20_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', (err) => {
      out += `\n${err.message}`;
      resolve();
    });
  });
  process.once('exit', () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { process: child, exited, output: () => out };
}

async function stopChild(child: Child): Promise<void> {
  const p = child.process;
  if (p.exitCode !== null || p.signalCode !== null || p.pid === undefined) return;
  p.kill('SIGTERM');
  const timer = setTimeout(() => p.kill('SIGKILL'), 5_000);
  await child.exited;
  clearTimeout(timer);
}

async function distinctFreePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

async function waitUntil(attempt: () => Promise<unknown>, timeoutMs: number, what: string, child: Child): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await attempt();
      return;
    } catch (err) {
      const p = child.process;
      if (p.exitCode !== null || p.signalCode !== null) throw new Error(`${what} exited: ${child.output().slice(-1500)}`);
      if (Date.now() > deadline) throw new Error(`${what} did not answer in ${timeoutMs} ms (${(err as Error).message}): ${child.output().slice(-1500)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

function httpsGet(url: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca, agent: false, timeout: 5_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`GET ${url}: ${res.statusCode} ${body}`))));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

function plainPost(url: string, body: unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent: false, timeout: 5_000 }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`POST ${url}: ${res.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error(`POST ${url} timed out`)));
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}
