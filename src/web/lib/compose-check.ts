/**
 * The Compose editor's check as you type, in the browser (a lazy chunk: YAML library and the
 * schema load only when the editor opens). It reads the file with the same YAML library the hub
 * uses, checks it against the same vendored Compose Specification schema (interpreted here:
 * the page's CSP forbids the code generation Ajv needs) and the hub's own list of keys dockfleet
 * carries, and gives each problem its line. The hub checks again, fully, on deploy; its answer
 * is what counts.
 */
import { LineCounter, isMap, isScalar, isSeq, parseDocument } from 'yaml';
import type { Document } from 'yaml';
import composeSpec from '../../hub/stacks/compose/compose-spec.json' with { type: 'json' };
import { formatPath } from '../../hub/stacks/compose/compose-path.ts';
import type { ComposePath, ComposeProblem } from '../../hub/stacks/compose/compose-path.ts';
import { findUnsupportedKeys } from '../../hub/stacks/compose/unsupported-keys.ts';
import type { ComposeIssue } from './types.ts';

type Schema = {
  $ref?: string; type?: string | string[]; properties?: Record<string, Schema>; patternProperties?: Record<string, Schema>;
  additionalProperties?: boolean | Schema; items?: Schema | Schema[]; oneOf?: Schema[]; anyOf?: Schema[]; enum?: unknown[];
  pattern?: string; minimum?: number; maximum?: number; required?: string[];
} | boolean;

const ROOT = composeSpec as unknown as Schema & { definitions: Record<string, Schema> };
const MAX_ISSUES = 50;
const MAX_DEPTH = 40;

function resolve(s: Schema): Schema {
  let cur = s;
  for (let i = 0; i < 10 && typeof cur === 'object' && cur.$ref; i++) {
    const name = cur.$ref.replace(/^#\/definitions\//, '');
    cur = ROOT.definitions[name] ?? true;
  }
  return cur;
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function typeMatches(want: string, v: unknown): boolean {
  const t = typeOf(v);
  return want === t || (want === 'number' && t === 'integer');
}

/** Problems of `v` against `schema`, deepest first; empty when it matches. */
function check(schema: Schema, v: unknown, path: ComposePath, depth: number): ComposeProblem[] {
  const s = resolve(schema);
  if (s === true) return [];
  if (s === false) return [{ path, message: 'is not allowed here' }];
  if (depth > MAX_DEPTH) return [];
  if (s.type !== undefined) {
    const types = Array.isArray(s.type) ? s.type : [s.type];
    if (!types.some((t) => typeMatches(t, v))) return [{ path, message: `must be ${types.join(' or ')}` }];
  }
  if (s.enum && !s.enum.some((e) => e === v)) return [{ path, message: `must be one of ${s.enum.map((e) => JSON.stringify(e)).join(', ')}` }];
  if (typeof v === 'string' && s.pattern && !new RegExp(s.pattern, 'u').test(v)) return [{ path, message: `must match ${s.pattern}` }];
  if (typeof v === 'number') {
    if (s.minimum !== undefined && v < s.minimum) return [{ path, message: `must be ≥ ${s.minimum}` }];
    if (s.maximum !== undefined && v > s.maximum) return [{ path, message: `must be ≤ ${s.maximum}` }];
  }
  const branches = s.oneOf ?? s.anyOf;
  if (branches) {
    let best: ComposeProblem[] | null = null;
    let bestDepth = -1;
    for (const b of branches) {
      const problems = check(b, v, path, depth + 1);
      if (problems.length === 0) return [];
      const d = Math.max(...problems.map((p) => p.path.length));
      if (d > bestDepth) {
        best = problems;
        bestDepth = d;
      }
    }
    // A complaint deeper than here names the real place; else list the shapes it may take.
    if (best && bestDepth > path.length) return best;
    const types = [...new Set(branches.map((b) => resolve(b)).flatMap((b) => (typeof b === 'object' && b.type ? ([] as string[]).concat(b.type) : [])))];
    return [{ path, message: types.length > 0 ? `must be ${types.join(' or ')}` : 'does not match the Compose Specification' }];
  }
  const out: ComposeProblem[] = [];
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    const obj = v as Record<string, unknown>;
    for (const req of s.required ?? []) if (!(req in obj)) out.push({ path, message: `needs \`${req}\`` });
    for (const [key, value] of Object.entries(obj)) {
      const sub = [...path, key];
      if (s.properties && key in s.properties) {
        out.push(...check(s.properties[key]!, value, sub, depth + 1));
        continue;
      }
      const pattern = Object.entries(s.patternProperties ?? {}).find(([p]) => new RegExp(p, 'u').test(key));
      if (pattern) {
        out.push(...check(pattern[1], value, sub, depth + 1));
        continue;
      }
      if (s.additionalProperties === false) out.push({ path: sub, message: `${JSON.stringify(key)} is not a Compose Specification key here` });
      else if (typeof s.additionalProperties === 'object') out.push(...check(s.additionalProperties, value, sub, depth + 1));
    }
  }
  if (Array.isArray(v) && s.items && !Array.isArray(s.items)) {
    v.forEach((item, i) => out.push(...check(s.items as Schema, item, [...path, i], depth + 1)));
  }
  return out;
}

/** The 1-based line of a place: the key itself when the path ends on a map key. */
function lineOf(doc: Document, counter: LineCounter, path: ComposePath): number | null {
  let node: unknown = doc.contents;
  let offset: number | null = null;
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(seg));
      if (!pair) break;
      const key = pair.key as { range?: [number, number, number] } | null;
      offset = key?.range?.[0] ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      node = node.items[seg];
      const r = (node as { range?: [number, number, number] } | undefined)?.range;
      offset = r?.[0] ?? offset;
    } else break;
  }
  if (offset === null) {
    const r = (doc.contents as { range?: [number, number, number] } | null)?.range;
    offset = r?.[0] ?? null;
  }
  return offset === null ? null : counter.linePos(offset).line;
}

/** Every problem the browser can see, sorted by line. Empty: nothing found (the hub decides). */
export function checkCompose(text: string): ComposeIssue[] {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    return doc.errors.slice(0, MAX_ISSUES).map((e) => ({
      path: '',
      line: e.linePos?.[0]?.line ?? counter.linePos(e.pos[0]).line,
      message: `YAML: ${e.message.split('\n')[0]}`,
    }));
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    return [{ path: '', line: null, message: `YAML: ${(err as Error).message}` }];
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return [{ path: '', line: 1, message: 'a Compose file is a mapping with `services`' }];
  }
  let problems = check(ROOT, value, [], 0);
  if (problems.length === 0) problems = findUnsupportedKeys(value);
  return problems
    .slice(0, MAX_ISSUES)
    .map((p) => ({ path: formatPath(p.path), line: lineOf(doc, counter, p.path), message: p.message }))
    .sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
}
