/**
 * One service's environment as the container gets it: `env_file` contents first (later files
 * win), then `environment` (which beats them). A variable whose value came from a secret
 * variable is kept apart: its name goes in `secretEnvironment`, its value out of the project.
 */
import type { ComposePath, ComposeProblem } from './compose-path.ts';
import { formatPath } from './compose-path.ts';
import { scalarText, ValueError } from './compose-values.ts';
import { parseEnvFile } from './env-file.ts';
import { interpolate } from './interpolate.ts';
import type { Variables } from './interpolate.ts';
import { decodeFile } from './deploy-files.ts';

export interface EnvironmentContext {
  vars: Variables;
  files: Record<string, string>;
  /** Formatted paths of values that hold secret values (from interpolation). */
  secretPaths: ReadonlyMap<string, unknown>;
}

export interface ServiceEnvironment {
  environment: Record<string, string>;
  secretEnvironment: string[];
  /** Secret variables' values by name, for the job's secret part. */
  secretValues: Record<string, string>;
}

interface Value {
  value: string;
  secret: boolean;
}

export function serviceEnvironment(raw: Record<string, unknown>, path: ComposePath, ctx: EnvironmentContext, problems: ComposeProblem[]): ServiceEnvironment {
  const merged = new Map<string, Value>();
  const bare = (key: string, at: ComposePath): void => {
    const found = ctx.vars.get(key);
    if (found === undefined) problems.push({ path: at, message: `variable ${key} is not set: give it in --env-file or --secret-env-file` });
    else merged.set(key, { value: found.value, secret: found.secret });
  };

  const envFiles = raw.env_file === undefined ? [] : Array.isArray(raw.env_file) ? raw.env_file : [raw.env_file];
  envFiles.forEach((entry: unknown, index) => {
    const at = [...path, 'env_file', ...(Array.isArray(raw.env_file) ? [index] : [])];
    const long = entry !== null && typeof entry === 'object' ? (entry as Record<string, unknown>) : null;
    const file = scalarText(long === null ? entry : long.path);
    const required = long === null || long.required !== false;
    try {
      const text = decodeFile(ctx.files, file, required);
      if (text === null) return;
      for (const item of parseEnvFile(text.toString('utf8'))) {
        if (item.value === null) {
          bare(item.key, at);
        } else if (!item.interpolate) {
          merged.set(item.key, { value: item.value, secret: false });
        } else {
          const result = interpolate(item.value, ctx.vars);
          if (result.ok) merged.set(item.key, { value: result.value, secret: result.secrets.length > 0 });
          else problems.push({ path: at, message: `${file} line ${item.line}: ${result.message}` });
        }
      }
    } catch (err) {
      if (!(err instanceof ValueError)) throw err;
      problems.push({ path: at, message: `${file}: ${err.message}` });
    }
  });

  const env = raw.environment;
  if (Array.isArray(env)) {
    env.forEach((item: unknown, index) => {
      const at = [...path, 'environment', index];
      const text = scalarText(item);
      const eq = text.indexOf('=');
      if (eq < 0) bare(text, at);
      else merged.set(text.slice(0, eq), { value: text.slice(eq + 1), secret: ctx.secretPaths.has(formatPath(at)) });
    });
  } else if (env !== null && typeof env === 'object') {
    for (const [key, item] of Object.entries(env as Record<string, unknown>)) {
      const at = [...path, 'environment', key];
      if (item === null) bare(key, at);
      else merged.set(key, { value: scalarText(item), secret: ctx.secretPaths.has(formatPath(at)) });
    }
  }

  const out: ServiceEnvironment = { environment: {}, secretEnvironment: [], secretValues: {} };
  for (const [key, { value, secret }] of [...merged].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (secret) {
      out.secretEnvironment.push(key);
      out.secretValues[key] = value;
    } else {
      out.environment[key] = value;
    }
  }
  return out;
}
