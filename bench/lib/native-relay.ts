/**
 * The floor for any relay: two nginx processes doing nothing but carrying bytes along the same
 * path the hub and agent carry them, client ⇄(TLS 1.3)⇄ "hub" nginx ⇄(TLS 1.3)⇄ "agent" nginx ⇄
 * the engine's unix socket. No HTTP parsing, no auth, no policy, no multiplexing: C, epoll and
 * OpenSSL, one process per role like the hub and the agent (master_process off, one worker).
 * Both hops use TLS_AES_128_GCM_SHA256, the suite the hub prefers. What this chain costs against
 * the engine's own socket is roughly what the two TLS hops and two extra loopback hops cost on
 * this machine: a lean native relay's figure, the reference for what the hub's own work costs.
 *
 * nginx is a bench tool here, not a dependency: BENCH_NGINX (binary) and BENCH_NGINX_STREAM
 * (ngx_stream_module.so) point at it; without them Debian's paths are tried, then the copy
 * `bench/fetch-nginx.sh` unpacks into bench/.native (Debian packages, nothing installed).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { ROOT } from './dockfleet-procs.ts';
import type { Target } from './http-timing.ts';
import { freePort, sleep, startChild, type Child } from './proc.ts';

export interface NginxPaths {
  binary: string;
  streamModule: string;
}

/** Where nginx and its stream module are, or why none could be found. */
export function findNginx(): NginxPaths | { missing: string } {
  const local = join(ROOT, 'bench', '.native');
  const candidates: NginxPaths[] = [
    ...(process.env.BENCH_NGINX ? [{ binary: process.env.BENCH_NGINX, streamModule: process.env.BENCH_NGINX_STREAM ?? '' }] : []),
    { binary: '/usr/sbin/nginx', streamModule: '/usr/lib/nginx/modules/ngx_stream_module.so' },
    { binary: join(local, 'usr/sbin/nginx'), streamModule: join(local, 'usr/lib/nginx/modules/ngx_stream_module.so') },
  ];
  const found = candidates.find((c) => existsSync(c.binary) && existsSync(c.streamModule));
  return found ?? { missing: `no nginx with its stream module (tried ${candidates.map((c) => c.binary).join(', ')}); run bench/fetch-nginx.sh or set BENCH_NGINX and BENCH_NGINX_STREAM` };
}

export interface RelayChain {
  /** HTTPS to the "hub" nginx; the path is the engine's own (no /docker/nodes prefix). */
  target: Target;
  pids: { relayHub: number; relayAgent: number };
  /** What `nginx -v` says. */
  version: string;
  stop(): Promise<void>;
}

const SUITE = 'TLS_AES_128_GCM_SHA256';

function config(nginx: NginxPaths, dir: string, role: string, listen: string, upstream: string, upstreamTls: boolean): string {
  return `load_module ${nginx.streamModule};
daemon off;
master_process off;
worker_processes 1;
pid ${join(dir, `${role}.pid`)};
error_log ${join(dir, `${role}.err`)} warn;
events { worker_connections 4096; }
stream {
  server {
    listen ${listen} ssl;
    ssl_certificate ${join(dir, 'cert.pem')};
    ssl_certificate_key ${join(dir, 'key.pem')};
    ssl_protocols TLSv1.3;
    ssl_conf_command Ciphersuites ${SUITE};
    proxy_pass ${upstream};
    proxy_buffer_size 256k;
    proxy_timeout 10m;
${upstreamTls ? `    proxy_ssl on;\n    proxy_ssl_protocols TLSv1.3;\n    proxy_ssl_conf_command Ciphersuites ${SUITE};\n` : ''}  }
}
`;
}

async function waitListening(child: Child, port: number, dir: string, role: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.proc.exitCode !== null) break;
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  const err = (await readFile(join(dir, `${role}.err`), 'utf8').catch(() => '')).trim() || child.tail().join('\n');
  const exit = child.proc.exitCode;
  throw new Error(`nginx (${role}) ${exit !== null ? `exited with code ${exit}` : 'did not listen'} on 127.0.0.1:${port}${err ? `: ${err}` : ' (it wrote no error)'}`);
}

/** Starts the two-nginx chain in front of `engineSocket`; `dir` holds its configs, key and logs. */
export async function startRelayChain(nginx: NginxPaths, engineSocket: string, dir: string): Promise<RelayChain> {
  await mkdir(dir, { recursive: true });
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '2',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  const hubPort = await freePort();
  const agentPort = await freePort();
  await writeFile(join(dir, 'agent.conf'), config(nginx, dir, 'agent', `127.0.0.1:${agentPort}`, `unix:${engineSocket}`, false));
  await writeFile(join(dir, 'hub.conf'), config(nginx, dir, 'hub', `127.0.0.1:${hubPort}`, `127.0.0.1:${agentPort}`, true));
  const started: Child[] = [];
  const stop = async (): Promise<void> => void (await Promise.all(started.map((c) => c.stop(2_000))));
  try {
    for (const [role, port] of [
      ['agent', agentPort],
      ['hub', hubPort],
    ] as const) {
      const child = startChild(`nginx-${role}`, nginx.binary, ['-p', dir, '-c', join(dir, `${role}.conf`), '-e', join(dir, `${role}.err`)]);
      started.push(child);
      await waitListening(child, port, dir, role);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    target: { kind: 'https', base: `https://127.0.0.1:${hubPort}`, caPem: await readFile(join(dir, 'cert.pem'), 'utf8') },
    pids: { relayAgent: started[0]!.pid, relayHub: started[1]!.pid },
    version: spawnSync(nginx.binary, ['-v'], { encoding: 'utf8' }).stderr.trim(),
    stop,
  };
}
