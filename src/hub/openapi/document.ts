/**
 * The OpenAPI 3.1 document of the REST API, built from the operations the route files declare
 * (operations.ts). Each schema is the route's own zod validator turned into JSON Schema draft
 * 2020-12 by zod itself (`z.toJSONSchema`): bodies and queries as a caller sends them (`input`),
 * answers as the hub writes them (`output`). Every 4xx and 5xx is the one error shape.
 */
import { readFileSync } from 'node:fs';
import { z, type ZodType } from 'zod';
import { errorAnswer } from '../../protocol/errors.ts';
import { describedOperations, type ApiOperation } from './operations.ts';
import { SESSION_COOKIE } from '../auth/sessions.ts';

type Json = Record<string, unknown>;

const VERSION = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** A zod schema as an embeddable JSON Schema; its own `$defs` move to components under `prefix`. */
function jsonSchema(schema: ZodType, io: 'input' | 'output', prefix: string, shared: Json): Json {
  const out = z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any' }) as Json;
  delete out.$schema;
  const defs = (out.$defs ?? {}) as Record<string, Json>;
  delete out.$defs;
  const rename = (name: string): string => `${prefix}.${name}`.replace(/[^A-Za-z0-9._-]/g, '_');
  const rewrite = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(rewrite);
    if (node === null || typeof node !== 'object') return node;
    const copy: Json = {};
    for (const [k, v] of Object.entries(node)) {
      copy[k] = k === '$ref' && typeof v === 'string' && v.startsWith('#/$defs/') ? `#/components/schemas/${rename(v.slice(8))}` : rewrite(v);
    }
    return copy;
  };
  for (const [name, def] of Object.entries(defs)) shared[rename(name)] = rewrite(def);
  return rewrite(out) as Json;
}

const operationId = (op: ApiOperation): string =>
  op.method +
  op.path
    .replace(/^\/api\/v1/, '')
    .split(/[/{}-]+/)
    .filter(Boolean)
    .map((w) => w[0]!.toUpperCase() + w.slice(1))
    .join('');

function parameters(op: ApiOperation, id: string, shared: Json): Json[] {
  const inPath = [...op.path.matchAll(/\{([^}]+)\}/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
  if (!op.query) return inPath;
  const q = jsonSchema(op.query, 'input', `${id}.query`, shared);
  const required = new Set((q.required ?? []) as string[]);
  const props = (q.properties ?? {}) as Record<string, Json>;
  return [...inPath, ...Object.entries(props).map(([name, schema]) => ({ name, in: 'query', required: required.has(name), schema }))];
}

/** The whole document, as `GET /api/v1/openapi.json` answers it. */
export function openApiDocument(): Json {
  const schemas: Json = { Error: jsonSchema(errorAnswer, 'output', 'Error', {}) };
  const paths: Record<string, Json> = {};
  const tags = new Set<string>();
  for (const op of describedOperations()) {
    const id = operationId(op);
    tags.add(op.tag);
    const responses: Json = {};
    for (const [status, answer] of Object.entries(op.responses)) {
      responses[status] =
        answer === 'text/event-stream'
          ? { description: 'Server-Sent Events', content: { 'text/event-stream': { schema: { type: 'string' } } } }
          : { description: `${op.summary} (${status})`, content: { 'application/json': { schema: jsonSchema(answer, 'output', `${id}.${status}`, schemas) } } };
    }
    const error = { description: 'Refused or failed: `{error: {code, message}}` (CONTRACT.md error codes)', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
    responses['4XX'] = error;
    responses['5XX'] = error;
    const params = parameters(op, id, schemas);
    paths[op.path] ??= {};
    paths[op.path]![op.method] = {
      operationId: id,
      summary: op.summary,
      tags: [op.tag],
      ...(params.length ? { parameters: params } : {}),
      ...(op.body ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(op.body, 'input', `${id}.body`, schemas) } } } } : {}),
      responses,
      ...(op.public ? { security: [] } : {}),
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'dockfleet hub REST API', version: VERSION, description: 'Generated from the zod schemas the hub validates requests with.' },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    servers: [{ url: '/' }],
    security: [{ bearer: [] }, { session: [] }],
    tags: [...tags].sort().map((name) => ({ name })),
    paths,
    components: {
      schemas,
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: "An API token (`dockfleet token create`, or the hub's admin.token)." },
        session: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE, description: "The web UI's session (changes also need the X-Dockfleet-UI header)." },
      },
    },
  };
}
