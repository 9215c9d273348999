/**
 * The reference a user would pick instead of dockfleet's edge: Debian's nginx as a TLS reverse
 * proxy to the same container port, on an unprivileged loopback port with its own prefix, config,
 * key and temp dirs (nothing of the system's nginx is read or written). Configured as a careful
 * operator would for a fair comparison: TLS 1.3 with the suite the hub prefers, HTTP/1.1 with a
 * keep-alive pool to the upstream (`keepalive` in the upstream block), no request or response
 * buffering to disk, no body size cap, WebSocket upgrades passed on, X-Forwarded-* set, no access
 * log. One worker process (master_process off), as the hub is one Node process.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { freePort, sleep, startChild, type Child } from './proc.ts';

export const NGINX_BINARY = process.env.BENCH_NGINX ?? '/usr/sbin/nginx';
const SUITE = 'TLS_AES_128_GCM_SHA256';

export interface EdgeNginx {
  child: Child;
  port: number;
  caPem: string;
  version: string;
  /** The config it runs, for the results file. */
  config: string;
  stop(): Promise<void>;
}

export function nginxConfig(dir: string, port: number, upstream: string, opts: { keepalive: number; workerConnections: number }): string {
  return `daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile ${opts.workerConnections + 64};
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections ${opts.workerConnections}; }
http {
  access_log off;
  client_body_temp_path ${join(dir, 'body')};
  proxy_temp_path ${join(dir, 'proxy')};
  fastcgi_temp_path ${join(dir, 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'uwsgi')};
  scgi_temp_path ${join(dir, 'scgi')};
  map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
  upstream app {
    server ${upstream};
    keepalive ${opts.keepalive};
    keepalive_requests 1000000;
    keepalive_timeout 300s;
  }
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${join(dir, 'cert.pem')};
    ssl_certificate_key ${join(dir, 'key.pem')};
    ssl_protocols TLSv1.3;
    ssl_conf_command Ciphersuites ${SUITE};
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    client_max_body_size 0;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Host $host;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto https;
      proxy_set_header X-Forwarded-Host $host;
      proxy_request_buffering off;
      proxy_buffering off;
      proxy_read_timeout 3600s;
      proxy_send_timeout 3600s;
    }
  }
}
`;
}

/** Starts nginx in `dir` proxying to `upstream` (IP:PORT); resolves once it accepts connections. */
export async function startEdgeNginx(dir: string, upstream: string, opts: { keepalive?: number; workerConnections?: number } = {}): Promise<EdgeNginx> {
  if (!existsSync(NGINX_BINARY)) throw new Error(`no nginx at ${NGINX_BINARY} (apt-get install nginx, or set BENCH_NGINX)`);
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
  const port = await freePort();
  const config = nginxConfig(dir, port, upstream, { keepalive: opts.keepalive ?? 512, workerConnections: opts.workerConnections ?? 30_000 });
  await writeFile(join(dir, 'nginx.conf'), config);
  const child = startChild('nginx', NGINX_BINARY, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')]);
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) break;
    if (child.proc.exitCode !== null || Date.now() > deadline) {
      const err = (await readFile(join(dir, 'error.log'), 'utf8').catch(() => '')).trim() || child.tail().join('\n');
      await child.stop(1_000);
      throw new Error(`nginx did not listen on 127.0.0.1:${port}: ${err || 'no error written'}`);
    }
    await sleep(50);
  }
  return {
    child,
    port,
    config,
    caPem: await readFile(join(dir, 'cert.pem'), 'utf8'),
    version: spawnSync(NGINX_BINARY, ['-v'], { encoding: 'utf8' }).stderr.trim(),
    stop: () => child.stop(2_000),
  };
}
