/**
 * What `dockfleet stack deploy` sends besides the Compose file: the env files' variables, and
 * every file the Compose file names (env_file, secrets.*.file, configs.*.file) read relative
 * to its directory, base64 by the path as written. The YAML is parsed here only to find those
 * paths; the hub validates the file itself.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parse } from 'yaml';
import { parseEnvFile } from '../../hub/stacks/compose/env-file.ts';
import { DockfleetError } from '../../protocol/errors.ts';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

async function readOrFail(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch {
    throw new DockfleetError('bad_request', `cannot read ${what} at ${path}`);
  }
}

/** KEY=VALUE lines as docker compose reads a .env file (`#` comments, `export `, quotes). */
export async function readEnvFile(path: string): Promise<Record<string, string>> {
  const text = (await readOrFail(path, 'the env file')).toString('utf8');
  const env: Record<string, string> = {};
  try {
    for (const entry of parseEnvFile(text)) {
      const value = entry.value ?? process.env[entry.key];
      if (value !== undefined) env[entry.key] = value;
    }
  } catch (err) {
    throw new DockfleetError('validation_failed', `${path}: ${(err as Error).message}`);
  }
  return env;
}

/** Paths the Compose file names: each with whether it must exist. */
export function namedFiles(yamlText: string): Array<{ path: string; required: boolean }> {
  let doc: unknown;
  try {
    doc = parse(yamlText, { maxAliasCount: 1_000 });
  } catch {
    return []; // the hub reports the YAML error with its line
  }
  if (!isObject(doc)) return [];
  const out: Array<{ path: string; required: boolean }> = [];
  for (const service of Object.values(isObject(doc.services) ? doc.services : {})) {
    if (!isObject(service)) continue;
    const envFiles = Array.isArray(service.env_file) ? service.env_file : service.env_file === undefined ? [] : [service.env_file];
    for (const f of envFiles) {
      if (typeof f === 'string') out.push({ path: f, required: true });
      else if (isObject(f) && typeof f.path === 'string') out.push({ path: f.path, required: f.required !== false });
    }
  }
  for (const section of ['secrets', 'configs'] as const) {
    for (const item of Object.values(isObject(doc[section]) ? doc[section] : {})) {
      if (isObject(item) && typeof item.file === 'string') out.push({ path: item.file, required: true });
    }
  }
  return out;
}

/** Reads every named file relative to the Compose file's directory: base64 by path as written. */
export async function readNamedFiles(composePath: string, yamlText: string): Promise<Record<string, string>> {
  const base = dirname(resolve(composePath));
  const files: Record<string, string> = {};
  for (const { path, required } of namedFiles(yamlText)) {
    if (path in files) continue;
    const full = resolve(base, path);
    try {
      files[path] = (await readFile(full)).toString('base64');
    } catch {
      if (required) throw new DockfleetError('bad_request', `cannot read ${path} (named in ${composePath}) at ${full}`);
    }
  }
  return files;
}
