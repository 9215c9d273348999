/**
 * A service's Compose `secrets` and `configs` files: their paths in the container (Compose's
 * defaults for a relative target: /run/secrets/NAME for a secret, /NAME for a config), their
 * contents (a config's from the project, a secret's from the job's secret part, base64), and
 * the digests the config-hash sees (never the contents).
 *
 * They are written into the created container with `PUT /containers/ID/archive` before it
 * starts, as docker compose itself does for secrets and configs it does not bind-mount. The
 * files land in the container's writable layer under the engine's data root, mode 0444,
 * owner 0:0, and go when the container is removed; dockfleet writes them nowhere else on the
 * host. (The engine also keeps a container's Env, secret variables included, in plaintext in
 * its config.v2.json under the data root.)
 */
import { createHash } from 'node:crypto';
import type { StackProject } from '../../protocol/stacks.ts';
import type { TarFile } from './tar-files.ts';

const FILE_MODE = 0o444;

export function hasServiceFiles(project: StackProject, service: string): boolean {
  const spec = project.services[service]!;
  return spec.secrets.length > 0 || spec.configs.length > 0;
}

const secretPath = (target: string): string => (target.startsWith('/') ? target : `/run/secrets/${target}`);
const configPath = (target: string): string => (target.startsWith('/') ? target : `/${target}`);

/** The files a service needs, or the reason they cannot be had (a missing source). */
export function serviceFiles(project: StackProject, service: string, secretFiles: Readonly<Record<string, string>>): { ok: true; files: TarFile[] } | { ok: false; error: string } {
  const spec = project.services[service]!;
  const files: TarFile[] = [];
  for (const s of spec.secrets) {
    const content = secretFiles[s.source];
    if (content === undefined) return { ok: false, error: `service ${service}: the job carries no contents for secret ${s.source}` };
    files.push({ path: secretPath(s.target), content: Buffer.from(content, 'base64'), mode: FILE_MODE });
  }
  for (const c of spec.configs) {
    const content = project.configs[c.source];
    if (content === undefined) return { ok: false, error: `service ${service}: the project has no contents for config ${c.source}` };
    files.push({ path: configPath(c.target), content: Buffer.from(content, 'base64'), mode: FILE_MODE });
  }
  return { ok: true, files };
}

/** For the config-hash: each file's path and a digest of its contents (a changed file replaces the container). */
export function serviceFileDigests(project: StackProject, service: string, secretFiles: Readonly<Record<string, string>>): Array<[string, string]> {
  const spec = project.services[service]!;
  const digest = (kind: string, text: string | undefined): string =>
    createHash('sha256')
      .update(`dockfleet-${kind}-file\0${text ?? ''}`)
      .digest('hex');
  return [
    ...spec.secrets.map((s): [string, string] => [secretPath(s.target), digest('secret', secretFiles[s.source])]),
    ...spec.configs.map((c): [string, string] => [configPath(c.target), digest('config', project.configs[c.source])]),
  ];
}
