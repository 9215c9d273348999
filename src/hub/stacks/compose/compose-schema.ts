/**
 * Validation against the Compose Specification's own JSON schema (draft-07, vendored beside
 * this file with its origin noted in its `$comment`). Ajv reports every failed branch of a
 * `oneOf`; this keeps what a person needs: unknown keys by name, and for each other place the
 * deepest complaint, with the types it may take.
 */
import { Ajv } from 'ajv';
import type { ErrorObject, ValidateFunction } from 'ajv';
import composeSpec from './compose-spec.json' with { type: 'json' };
import type { ComposePath, ComposeProblem } from './compose-path.ts';

let compiled: ValidateFunction | null = null;

function validator(): ValidateFunction {
  if (compiled === null) {
    // strict: false: the spec uses annotations (`deprecated`) that draft-07 does not define.
    const ajv = new Ajv({ allErrors: true, strict: false, validateSchema: false });
    compiled = ajv.compile(composeSpec);
  }
  return compiled;
}

export function validateComposeSchema(value: unknown): ComposeProblem[] {
  const validate = validator();
  if (validate(value)) return [];
  return summarise(validate.errors ?? []);
}

function toPath(pointer: string): ComposePath {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((raw) => {
      const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
      return /^(0|[1-9][0-9]*)$/.test(seg) ? Number(seg) : seg;
    });
}

function summarise(errors: ErrorObject[]): ComposeProblem[] {
  const problems: ComposeProblem[] = [];
  const byPath = new Map<string, ErrorObject[]>();
  for (const err of errors) {
    if (err.keyword === 'additionalProperties') {
      const key = String((err.params as { additionalProperty: string }).additionalProperty);
      problems.push({
        path: [...toPath(err.instancePath), key],
        message: `${JSON.stringify(key)} is not a Compose Specification key here`,
      });
      continue;
    }
    const list = byPath.get(err.instancePath) ?? [];
    list.push(err);
    byPath.set(err.instancePath, list);
  }
  const reported = new Set(problems.map((p) => p.path.slice(0, -1).join('/')));
  const pointers = [...byPath.keys()];
  for (const pointer of pointers) {
    // Only the deepest places: a parent fails because its child did.
    if (pointers.some((other) => other !== pointer && other.startsWith(`${pointer}/`))) continue;
    const path = toPath(pointer);
    if (reported.has(path.join('/'))) continue;
    problems.push({ path, message: describe(byPath.get(pointer) ?? []) });
  }
  return problems;
}

function describe(errors: ErrorObject[]): string {
  const types = [...new Set(errors.filter((e) => e.keyword === 'type').map((e) => String((e.params as { type: string }).type)))];
  if (types.length > 0) return `must be ${types.join(' or ')}`;
  const specific = errors.find((e) => e.keyword !== 'oneOf' && e.keyword !== 'anyOf' && e.keyword !== 'if');
  const chosen = specific ?? errors[0];
  if (chosen === undefined) return 'does not match the Compose Specification';
  if (chosen.keyword === 'enum') {
    return `must be one of ${(chosen.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
  }
  return chosen.message ?? 'does not match the Compose Specification';
}
