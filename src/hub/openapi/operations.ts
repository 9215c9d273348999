/**
 * The REST API's operations, as each route file declares them beside its handlers: method, path
 * (OpenAPI form, `{param}`), a summary, the very zod schemas the route validates its body and
 * query with, and a zod schema per success status for what it answers. The OpenAPI document
 * (document.ts) is built from this book and nothing else, so it cannot drift from the validators.
 * Declarations run once, when a route module loads; declaring the same operation again replaces it.
 */
import type { ZodType } from 'zod';

export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';

export interface ApiOperation {
  method: HttpMethod;
  /** `/api/v1/nodes/{name}`: Hono's `:name` written the OpenAPI way. */
  path: string;
  summary: string;
  /** The JSON body the route parses (its own validator). */
  body?: ZodType;
  /** The query the route parses (its own validator, a z.object of its parameters). */
  query?: ZodType;
  /** Success answers by status: a zod schema of the JSON, or `text/event-stream` for a stream. */
  responses: Record<number, ZodType | 'text/event-stream'>;
  /** No bearer token or session needed (enrollment, first-run setup, sign-in). */
  public?: boolean;
  /** Where the document groups it (defaults to the declaring file's tag). */
  tag?: string;
}

const book = new Map<string, ApiOperation & { tag: string }>();

/** Declares a route file's operations under one tag (the document's grouping). */
export function describeRoutes(tag: string, operations: readonly ApiOperation[]): void {
  for (const op of operations) book.set(`${op.method.toUpperCase()} ${op.path}`, { ...op, tag: op.tag ?? tag });
}

/** Every operation declared so far, in path order. */
export function describedOperations(): Array<ApiOperation & { tag: string }> {
  return [...book.values()].sort((a, b) => a.path.localeCompare(b.path) || a.method.localeCompare(b.method));
}

/** Hono's `/a/:b` as OpenAPI's `/a/{b}`. */
export const openApiPath = (honoPath: string): string => honoPath.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
