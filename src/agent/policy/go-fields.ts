/**
 * Reading a parsed body the way the engine's Go decoder reads it: object keys match field
 * names case-insensitively. Bodies come from parseStrictJson, which refuses keys that fold
 * together, so at most one key can match. A present value of the wrong shape is reported as
 * `malformed`: the policy refuses what it cannot read (the engine would reject it anyway).
 */
import { foldKey } from './strict-json.ts';

export type JsonObject = Record<string, unknown>;

export const MALFORMED = Symbol('malformed');

export function isRecord(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The value under `name`, matched as Go matches struct fields; undefined when absent. */
export function field(obj: JsonObject, name: string): unknown {
  const want = foldKey(name);
  for (const key of Object.keys(obj)) if (foldKey(key) === want) return obj[key];
  return undefined;
}

/** An optional object field: null/absent → null. */
export function objectField(obj: JsonObject, name: string): JsonObject | null | typeof MALFORMED {
  const value = field(obj, name);
  if (value === undefined || value === null) return null;
  return isRecord(value) ? value : MALFORMED;
}

/** An optional list field: null/absent → []. */
export function listField(obj: JsonObject, name: string): unknown[] | typeof MALFORMED {
  const value = field(obj, name);
  if (value === undefined || value === null) return [];
  return Array.isArray(value) ? value : MALFORMED;
}

/** An optional list of strings: null/absent → []. */
export function stringsField(obj: JsonObject, name: string): string[] | typeof MALFORMED {
  const list = listField(obj, name);
  if (list === MALFORMED || !list.every((item): item is string => typeof item === 'string')) return MALFORMED;
  return list;
}

/** An optional string field: null/absent → ''. */
export function stringField(obj: JsonObject, name: string): string | typeof MALFORMED {
  const value = field(obj, name);
  if (value === undefined || value === null) return '';
  return typeof value === 'string' ? value : MALFORMED;
}

/** Whether a flag is set: anything but absent, null or false counts as set. */
export function flagSet(obj: JsonObject, name: string): boolean {
  const value = field(obj, name);
  return value !== undefined && value !== null && value !== false;
}
