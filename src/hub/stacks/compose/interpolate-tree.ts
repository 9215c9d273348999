/**
 * Interpolates every string value of a parsed Compose file (keys are left alone, as Compose
 * does; top-level `x-` extensions are skipped, since their anchors were already copied to where
 * they are used). Returns the new tree, the problems, and where secret values went.
 */
import type { ComposePath, ComposeProblem } from './compose-path.ts';
import { formatPath } from './compose-path.ts';
import { interpolate } from './interpolate.ts';
import type { Variables } from './interpolate.ts';

export interface InterpolatedTree {
  value: unknown;
  problems: ComposeProblem[];
  /** Formatted path → where it is and the secret variables whose values it holds. */
  secretPaths: Map<string, { path: ComposePath; names: string[] }>;
}

export function interpolateTree(root: unknown, vars: Variables): InterpolatedTree {
  const problems: ComposeProblem[] = [];
  const secretPaths: InterpolatedTree['secretPaths'] = new Map();
  const walk = (value: unknown, path: ComposePath): unknown => {
    if (typeof value === 'string') {
      const result = interpolate(value, vars);
      if (!result.ok) {
        problems.push({ path, message: result.message });
        return value;
      }
      if (result.secrets.length > 0) secretPaths.set(formatPath(path), { path, names: result.secrets });
      return result.value;
    }
    if (Array.isArray(value)) return value.map((item, index) => walk(item, [...path, index]));
    if (value !== null && typeof value === 'object') {
      if (Object.getPrototypeOf(value) !== Object.prototype) {
        problems.push({ path, message: 'only strings, numbers, booleans, null, lists and mappings are Compose values (no YAML !!binary, !!set, …)' });
        return null;
      }
      const out: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(value)) {
        if (key === '__proto__') {
          problems.push({ path: [...path, key], message: 'the key __proto__ is not allowed' });
          continue;
        }
        out[key] = path.length === 0 && key.startsWith('x-') ? item : walk(item, [...path, key]);
      }
      return out;
    }
    return value;
  };
  const value = walk(root, []);
  return { value, problems, secretPaths };
}
