/**
 * `dockfleet docker-env NAME`: a client certificate for the stock docker CLI. The key pair is
 * made here and never leaves this machine; the hub certifies the public key for this user.
 * Prints the exports that point DOCKER_HOST at NAME through the hub.
 */
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { clientCertIssued } from '../../protocol/api.ts';
import { UsageError, type Command } from '../command.ts';
import { TARGET_HELP, TARGET_OPTIONS, callHub, resolveTarget, type HubTarget } from '../hub-client.ts';

const RENEW_BEFORE_MS = 7 * 24 * 3600 * 1000;

export function defaultCertDir(target: HubTarget): string {
  return join(homedir(), '.dockfleet', 'docker', `${target.url.hostname.replace(/[^A-Za-z0-9.-]/g, '_')}-${target.url.port || '443'}`);
}

async function usableCert(dir: string): Promise<boolean> {
  try {
    const cert = new X509Certificate(await readFile(join(dir, 'cert.pem')));
    await readFile(join(dir, 'key.pem'));
    await readFile(join(dir, 'ca.pem'));
    return Date.parse(cert.validTo) - Date.now() > RENEW_BEFORE_MS;
  } catch {
    return false;
  }
}

/** Makes sure DIR holds ca.pem, cert.pem and key.pem for this hub and user. */
export async function ensureClientCert(target: HubTarget, dir: string, renew: boolean): Promise<void> {
  if (!renew && (await usableCert(dir))) return;
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const issued = clientCertIssued.parse(await callHub(target, 'POST', '/api/v1/client-certs', { publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString() }));
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(join(dir, 'key.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), { mode: 0o600 });
  await chmod(join(dir, 'key.pem'), 0o600);
  await writeFile(join(dir, 'cert.pem'), issued.certPem);
  await writeFile(join(dir, 'ca.pem'), issued.caPem);
}

export const dockerEnvCommand: Command = {
  summary: 'print the exports that point the stock docker CLI at NAME through the hub',
  usage: `dockfleet docker-env NAME [--dir DIR] [--renew]

Writes ca.pem, cert.pem and key.pem (a client certificate the hub issues to you; the key is
made here) into DIR (default ~/.dockfleet/docker/HUB-PORT) and prints:
  export DOCKER_HOST=tcp://HUB:PORT/docker/nodes/NAME
  export DOCKER_TLS_VERIFY=1
  export DOCKER_CERT_PATH=DIR
Use it as: eval "$(dockfleet docker-env NAME)"; docker ps

  --dir DIR   where to keep the certificate files
  --renew     issue a new certificate even if the one in DIR is still good

${TARGET_HELP}`,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      strict: true,
      allowPositionals: true,
      options: { ...TARGET_OPTIONS, dir: { type: 'string' }, renew: { type: 'boolean' } },
    });
    if (positionals.length !== 1) throw new UsageError('expected exactly one NAME');
    const name = positionals[0]!;
    const target = resolveTarget(values);
    await callHub(target, 'GET', `/api/v1/nodes/${encodeURIComponent(name)}`);
    const dir = resolve(values.dir ?? defaultCertDir(target));
    await ensureClientCert(target, dir, values.renew === true);
    process.stdout.write(`export DOCKER_HOST=tcp://${target.url.host}/docker/nodes/${name}\nexport DOCKER_TLS_VERIFY=1\nexport DOCKER_CERT_PATH=${dir}\n`);
  },
};
