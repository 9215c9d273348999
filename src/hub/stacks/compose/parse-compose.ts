/**
 * The Compose front door at the hub: one pure function from a Compose file (plus the deploy's
 * variables and files) to the normalised StackProject the agent applies, or to every problem
 * with its path and line. Nothing is queued for a file that does not pass here.
 *
 * Order, as Compose does it: YAML (positions kept, duplicate keys and alias bombs refused) →
 * interpolation → the Compose Specification's JSON schema → keys dockfleet does not carry →
 * normalisation (short syntax made long, references checked).
 */
import { SERVICE_NAME, STACK_NAME, stackProject } from '../../../protocol/stacks.ts';
import type { StackProject, StackService } from '../../../protocol/stacks.ts';
import type { ComposeError, ComposeProblem } from './compose-path.ts';
import { formatPath } from './compose-path.ts';
import { validateComposeSchema } from './compose-schema.ts';
import type { Variable } from './interpolate.ts';
import { interpolateTree } from './interpolate-tree.ts';
import { normaliseService } from './normalise-service.ts';
import { addDefaultNetwork, normaliseTopLevel } from './normalise-project.ts';
import { findUnsupportedKeys } from './unsupported-keys.ts';
import { YamlSource } from './yaml-source.ts';

export type { ComposeError } from './compose-path.ts';
export { projectDigest } from './project-digest.ts';

export interface ComposeInput {
  /** The stack's name; it becomes the Compose project name. */
  stack: string;
  /** The Compose file's text. */
  yaml: string;
  /** --env-file values, for ${VAR} interpolation and bare `environment` names. */
  env: Record<string, string>;
  /** --secret-env-file values: interpolated too, but kept out of the project. */
  secretEnv: Record<string, string>;
  /** Base64 contents of env_file / secrets / configs files, keyed by the path written in the file. */
  files: Record<string, string>;
}

export type ComposeResult =
  | {
      ok: true;
      project: StackProject;
      /** Secret file contents (base64) by secret key: the job's `secrets.files`. */
      secretFiles: Record<string, string>;
      /** Every service variable listed in a `secretEnvironment`, with its value: the job's
       * `secrets.env`. (Not the --secret-env-file values as given: `PW: "x${DB_PW}"` renders here.) */
      secretEnv: Record<string, string>;
    }
  | { ok: false; errors: ComposeError[] };

export const MAX_REPORTED_ERRORS = 100;

export function parseCompose(input: ComposeInput): ComposeResult {
  const early: ComposeError[] = [];
  if (!STACK_NAME.test(input.stack)) {
    early.push({ path: '', line: null, message: `stack name ${JSON.stringify(input.stack)} must be lowercase letters, digits, - and _ (at most 63)` });
  }
  const vars = new Map<string, Variable>();
  for (const [name, value] of Object.entries(input.env)) vars.set(name, { value, secret: false });
  for (const [name, value] of Object.entries(input.secretEnv)) {
    if (vars.has(name)) early.push({ path: '', line: null, message: `variable ${name} is given both as plain and as secret` });
    vars.set(name, { value, secret: true });
  }
  if (early.length > 0) return { ok: false, errors: early };

  const read = YamlSource.read(input.yaml);
  if (!read.ok) return { ok: false, errors: read.errors };
  const { source } = read;
  const fail = (problems: ComposeProblem[]): ComposeResult => ({
    ok: false,
    errors: problems
      .map((p) => source.error(p.path, p.message))
      .sort((a, b) => (a.line ?? 0) - (b.line ?? 0))
      .slice(0, MAX_REPORTED_ERRORS),
  });
  if (read.value === null || typeof read.value !== 'object' || Array.isArray(read.value)) {
    return fail([{ path: [], message: 'a Compose file is a mapping with `services`' }]);
  }

  const tree = interpolateTree(read.value, vars);
  if (tree.problems.length > 0) return fail(tree.problems);
  const root = tree.value as Record<string, unknown>;

  const schemaProblems = validateComposeSchema(root);
  const seen = new Set(schemaProblems.map((p) => formatPath(p.path)));
  const shape = [...schemaProblems, ...findUnsupportedKeys(root).filter((p) => !seen.has(formatPath(p.path)))];
  if (shape.length > 0) return fail(shape);

  const problems: ComposeProblem[] = [];
  for (const { path, names } of tree.secretPaths.values()) {
    const inEnvironment = path[0] === 'services' && path[2] === 'environment' && path.length === 4;
    if (!inEnvironment) {
      problems.push({ path, message: `secret variable ${names.join(', ')} may be used only in a service's environment (or as a secret); its value would otherwise be stored and shown` });
    }
  }
  if (root.name !== undefined && root.name !== input.stack) {
    problems.push({ path: ['name'], message: `name ${JSON.stringify(root.name)} differs from the stack's name ${JSON.stringify(input.stack)}` });
  }

  const rawServices = (root.services ?? {}) as Record<string, Record<string, unknown>>;
  if (Object.keys(rawServices).length === 0) problems.push({ path: ['services'], message: 'a stack needs at least one service' });
  const top = normaliseTopLevel(input.stack, root, vars, input.files, problems);
  const ctx = {
    vars,
    files: input.files,
    secretPaths: tree.secretPaths,
    services: new Set(Object.keys(rawServices)),
    networks: new Set([...Object.keys(top.networks), 'default']),
    volumes: new Set(Object.keys(top.volumes)),
    secrets: new Set(Object.keys(top.secretFiles)),
    configs: new Set(Object.keys(top.configs)),
  };
  const services: Record<string, StackService> = {};
  const secretEnv: Record<string, string> = {};
  const secretFrom: Record<string, string> = {};
  for (const [name, raw] of Object.entries(rawServices)) {
    if (!SERVICE_NAME.test(name)) {
      problems.push({ path: ['services', name], message: `service name ${JSON.stringify(name)} must start with a letter or digit (at most 63 characters)` });
      continue;
    }
    const { service, secretValues } = normaliseService(name, raw ?? {}, ctx, problems);
    services[name] = service;
    for (const [key, value] of Object.entries(secretValues)) {
      if (Object.hasOwn(secretEnv, key) && secretEnv[key] !== value) {
        problems.push({
          path: ['services', name, 'environment'],
          message: `${key} takes a different secret value here than in service ${JSON.stringify(secretFrom[key])}: give it another name in one of them`,
        });
      }
      secretEnv[key] = value;
      secretFrom[key] = name;
    }
  }
  if (problems.length > 0) return fail(problems);

  const project: StackProject = {
    name: input.stack,
    services,
    networks: top.networks,
    volumes: top.volumes,
    configs: top.configs,
    secretFiles: Object.keys(top.secretFiles).sort(),
  };
  addDefaultNetwork(input.stack, project);
  const checked = stackProject.safeParse(project);
  if (!checked.success) {
    return fail(
      checked.error.issues.map((issue) => ({
        path: issue.path.filter((seg): seg is string | number => typeof seg !== 'symbol'),
        message: `cannot be carried to the host: ${issue.message}`,
      })),
    );
  }
  return { ok: true, project: checked.data, secretFiles: top.secretFiles, secretEnv };
}
