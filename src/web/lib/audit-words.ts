/**
 * An audit row in words: "mara opened a terminal in web on shop-01". Pure: the row's user,
 * node, method and path (a REST path under /api/v1, a Docker Engine API path, or one of the
 * hub's own marked paths such as the terminal's) become a sentence made of text and links to
 * the node's and the container's pages. Paths it does not know read as "called METHOD PATH",
 * so a new route is never hidden, only plainer. A failed call reads as "tried to …".
 */

export type WordPart = string | { text: string; href: string };

export interface AuditWordsInput {
  user: string;
  node: string | null;
  method: string;
  path: string;
  status: number | null;
}

export interface AuditWords {
  parts: WordPart[];
  /** The same sentence as plain text (tests, titles, screen-reader summaries). */
  text: string;
}

const VERSION_PREFIX = /^\/v\d+(?:\.\d+)?(?=\/)/;

const CONTAINER_VERBS: Record<string, string> = {
  start: 'start',
  stop: 'stop',
  restart: 'restart',
  kill: 'kill',
  pause: 'pause',
  unpause: 'unpause',
  wait: 'wait for',
  resize: 'resize the console of',
  attach: 'attach to',
  update: 'change the resources of',
  export: 'export',
};

const PRUNE_WHAT: Record<string, string> = {
  containers: 'stopped containers',
  images: 'unused images',
  volumes: 'unused volumes',
  networks: 'unused networks',
  build: 'the build cache',
};

const NODE_VERBS: Record<string, string> = { approve: 'approve', revoke: 'revoke', rotate: 'rotate the key of' };

const STACK_VERBS: Record<string, string> = { deploy: 'deploy', rollback: 'roll back', validate: 'validate' };

function nodeHref(node: string): string {
  return `/containers?node=${encodeURIComponent(node)}`;
}

function containerHref(node: string, id: string): string {
  return `/containers/${encodeURIComponent(node)}/${encodeURIComponent(id)}`;
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Splits a path into its segments and query (path segments decoded). */
function splitPath(path: string): { segs: string[]; query: URLSearchParams } {
  const q = path.indexOf('?');
  const bare = (q < 0 ? path : path.slice(0, q)).replace(VERSION_PREFIX, '');
  return { segs: bare.split('/').filter(Boolean).map(decode), query: new URLSearchParams(q < 0 ? '' : path.slice(q + 1)) };
}

/** The predicate ("created container web-1") of a Docker Engine API call, or null. */
function dockerPredicate(method: string, segs: string[], query: URLSearchParams, node: string | null): WordPart[] | null {
  const [kind, id, op] = segs;
  const container = (c: string): WordPart => (node ? { text: c, href: containerHref(node, c) } : c);
  if (op === 'prune' || id === 'prune') {
    const what = PRUNE_WHAT[kind ?? ''];
    return what && method === 'POST' ? [`prune ${what}`] : null;
  }
  switch (kind) {
    case 'containers': {
      if (id === 'create' && method === 'POST') {
        const name = query.get('name');
        return name ? ['create container ', container(name)] : ['create a container'];
      }
      if (!id) return null;
      if (method === 'DELETE' && !op) return ['remove container ', id];
      if (op === 'exec (terminal)') return ['open a terminal in ', container(id)];
      if (op === 'exec') return ['run a command in ', container(id)];
      if (op === 'rename') return ['rename container ', container(id), ` to ${query.get('name') ?? '?'}`];
      if (op === 'archive' && method === 'PUT') return ['upload files into ', container(id)];
      const verb = op ? CONTAINER_VERBS[op] : undefined;
      if (verb) return [`${verb} container `, container(id)];
      return null;
    }
    case 'exec':
      return id && op === 'start' ? ['start a command (exec ', id.slice(0, 12), ')'] : id && op === 'resize' ? ['resize a command’s console'] : null;
    case 'images': {
      if (id === 'create' && method === 'POST') {
        const from = query.get('fromImage');
        if (!from) return ['import an image'];
        const tag = query.get('tag');
        return [`pull image ${from}${tag && !from.includes('@') ? `:${tag}` : ''}`];
      }
      if (id === 'load') return ['load images'];
      // Image names hold slashes: everything up to a trailing operation is the name.
      const last = segs[segs.length - 1];
      if (method === 'POST' && segs.length > 2 && (last === 'tag' || last === 'push')) {
        const name = segs.slice(1, -1).join('/');
        if (last === 'push') return [`push image ${name}`];
        const repo = query.get('repo');
        return [`tag image ${name}${repo ? ` as ${repo}${query.get('tag') ? `:${query.get('tag')}` : ''}` : ''}`];
      }
      if (method === 'DELETE' && segs.length > 1) return [`remove image ${segs.slice(1).join('/')}`];
      return null;
    }
    case 'build':
      return [query.get('t') ? `build image ${query.get('t')}` : 'build an image'];
    case 'volumes':
      if (id === 'create' && method === 'POST') return ['create a volume'];
      if (id && op === 'files') {
        const where = query.get('path');
        const at = where ? ` (${where})` : '';
        return method === 'DELETE' ? [`delete files in volume ${id}${at}`] : [`change files in volume ${id}${at}`];
      }
      if (id && method === 'DELETE' && !op) return [`remove volume ${id}`];
      return null;
    case 'networks':
      if (id === 'create' && method === 'POST') return ['create a network'];
      if (id && (op === 'connect' || op === 'disconnect')) return [`${op} a container ${op === 'connect' ? 'to' : 'from'} network ${id}`];
      if (id && method === 'DELETE' && !op) return [`remove network ${id}`];
      return null;
    default:
      return null;
  }
}

/** The predicate of a REST call under /api/v1, or null. */
function restPredicate(method: string, segs: string[]): WordPart[] | null {
  const [, , what, id, op] = segs;
  switch (what) {
    case 'setup':
      return ['set up the hub as its first admin'];
    case 'session':
      if (method === 'DELETE') return ['sign out'];
      return ['sign in'];
    case 'me':
      return id === 'password' ? ['change their password'] : null;
    case 'tokens':
      return method === 'DELETE' ? ['revoke an API token'] : ['create an API token'];
    case 'client-certs':
      return method === 'DELETE' ? [`revoke Docker client certificate ${id ?? ''}`.trim()] : ['get a Docker client certificate'];
    case 'certificates':
      return method === 'DELETE' ? [`remove certificate ${id ?? ''}`.trim()] : ['add a certificate'];
    case 'edge':
      return id === 'hand-off' ? ['sign in to an app behind the edge'] : null;
    case 'enrollments':
      return ['create an enrollment code'];
    case 'join-tokens':
      return ['create a join token'];
    case 'users':
      return method === 'POST' && !id ? ['create a user'] : null;
    case 'nodes': {
      if (!id) return null;
      const link = { text: id, href: nodeHref(id) };
      if (op === 'labels') return ['change the labels of ', link];
      const verb = op ? NODE_VERBS[op] : undefined;
      return verb ? [`${verb} node `, link] : null;
    }
    case 'stacks': {
      if (!id) return null;
      const link = { text: id, href: `/stacks/${encodeURIComponent(id)}` };
      if (method === 'DELETE' && !op) return ['remove stack ', link];
      const verb = op ? STACK_VERBS[op] : undefined;
      return verb ? [`${verb} stack `, link] : null;
    }
    default:
      return null;
  }
}

function joinText(parts: WordPart[]): string {
  return parts.map((p) => (typeof p === 'string' ? p : p.text)).join('');
}

/** Reads an audit row as a sentence. */
export function auditWords(row: AuditWordsInput): AuditWords {
  const method = row.method.toUpperCase();
  const { segs, query } = splitPath(row.path);
  const rest = segs[0] === 'api' && segs[1] === 'v1';
  let predicate = rest ? restPredicate(method, segs) : dockerPredicate(method, segs, query, row.node);
  // A REST call that acts on a node's Docker resources (volume files) names them as Docker does.
  if (!predicate && rest && segs[2] === 'nodes' && segs.length > 4) predicate = dockerPredicate(method, segs.slice(4), query, row.node);
  const failed = row.status !== null && row.status >= 400;
  const [first, ...more] = predicate ?? [`call ${method} ${row.path}`];
  const head = typeof first === 'string' ? first : '';
  const parts: WordPart[] = [row.user, ' ', failed ? `tried to ${head}` : pastTense(head), ...more];
  // The node, unless the sentence already links it (node routes name it themselves).
  if (row.node && !(rest && segs[2] === 'nodes' && segs.length <= 5)) parts.push(' on ', { text: row.node, href: nodeHref(row.node) });
  return { parts, text: joinText(parts) };
}

/** Past forms of the first words the predicates start with ("roll back" → "rolled back"). */
const PAST: Record<string, string> = {
  add: 'added',
  approve: 'approved',
  attach: 'attached',
  build: 'built',
  call: 'called',
  change: 'changed',
  connect: 'connected',
  create: 'created',
  delete: 'deleted',
  deploy: 'deployed',
  disconnect: 'disconnected',
  export: 'exported',
  get: 'got',
  import: 'imported',
  kill: 'killed',
  load: 'loaded',
  open: 'opened',
  pause: 'paused',
  prune: 'pruned',
  pull: 'pulled',
  push: 'pushed',
  remove: 'removed',
  rename: 'renamed',
  resize: 'resized',
  restart: 'restarted',
  revoke: 'revoked',
  roll: 'rolled',
  rotate: 'rotated',
  run: 'ran',
  set: 'set',
  sign: 'signed',
  start: 'started',
  stop: 'stopped',
  tag: 'tagged',
  unpause: 'unpaused',
  upload: 'uploaded',
  validate: 'validated',
  wait: 'waited',
};

/** "create container " → "created container " (predicates are written in the base form). */
function pastTense(phrase: string): string {
  const space = phrase.indexOf(' ');
  const word = space < 0 ? phrase : phrase.slice(0, space);
  return `${PAST[word] ?? word}${space < 0 ? '' : phrase.slice(space)}`;
}
