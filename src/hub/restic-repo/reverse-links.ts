/**
 * The hub's half of restic's way in (protocol/restic-reverse.ts): on every agent link it keeps one
 * stream parked at RESTIC_REVERSE_PATH. When the agent answers one (a restic process on that host
 * wants its repository), the stream becomes that restic connection: an HTTP/2 server session of
 * the repository server runs over it, scoped to the link's node and the named repository, and
 * another stream is parked. At most MAX_SESSIONS_PER_LINK run at once per link; an agent that
 * does not know the path (404) gets no more parked streams on that link.
 */
import http2, { type ClientHttp2Stream, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import { cancelUnlessDone } from '../../lib/h2-channel.ts';
import type { Logger } from '../../lib/logger.ts';
import { RESTIC_REPO_HEADER, RESTIC_REVERSE_PATH, isRepoName } from '../../protocol/restic-reverse.ts';
import type { AgentLink } from '../gateway/agent-link.ts';
import type { NodeRegistry } from '../node-registry.ts';
import { GatedDuplex } from './gated-duplex.ts';
import { join } from 'node:path';
import { RepoDir, openRepoRoot } from './repo-files.ts';
import { serveRepoRequest } from './repo-server.ts';

export const MAX_SESSIONS_PER_LINK = 8;
const REPARK_AFTER_MS = 1_000;
/**
 * restic's connection, as the repository server receives it: windows big enough for its five
 * concurrent uploads to fill a long link (the link's own stream window bounds what is in flight).
 */
const INNER_STREAM_WINDOW = 4 * 1024 * 1024;
const INNER_SESSION_WINDOW = 32 * 1024 * 1024;

interface LinkState {
  parked: ClientHttp2Stream | null;
  sessions: Set<ServerHttp2Session>;
  /** The agent answered 404: it has no restic bridge. */
  unsupported: boolean;
}

export class ResticReverseLinks {
  readonly #root: string;
  readonly #log: Logger;
  readonly #links = new Map<AgentLink, LinkState>();
  readonly #scopes = new WeakMap<ServerHttp2Session, RepoDir>();
  readonly #server: http2.Http2Server;
  #closed = false;

  constructor(opts: { registry: NodeRegistry; root: string; log: Logger }) {
    this.#root = opts.root;
    this.#log = opts.log;
    this.#server = http2.createServer({
      settings: { initialWindowSize: INNER_STREAM_WINDOW, maxConcurrentStreams: 64, enablePush: false },
      maxSessionMemory: 64,
    });
    this.#server.on('stream', (stream: ServerHttp2Stream, headers) => {
      const repo = this.#scopes.get(stream.session as ServerHttp2Session);
      if (!repo) return void stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      void serveRepoRequest(repo, stream, headers, this.#log);
    });
    opts.registry.on('linked', (link) => this.#attach(link));
  }

  /** Restic connections open now, over all links (for tests and stats). */
  get sessions(): number {
    let n = 0;
    for (const state of this.#links.values()) n += state.sessions.size;
    return n;
  }

  close(): void {
    this.#closed = true;
    for (const state of this.#links.values()) {
      if (state.parked) cancelUnlessDone(state.parked);
      for (const session of state.sessions) session.destroy();
    }
    this.#links.clear();
  }

  #attach(link: AgentLink): void {
    if (this.#closed) return;
    const state: LinkState = { parked: null, sessions: new Set(), unsupported: false };
    this.#links.set(link, state);
    link.once('close', () => {
      this.#links.delete(link);
      for (const session of state.sessions) session.destroy();
    });
    // Told to move: the waiting stream would keep the drain open; sessions in use finish.
    link.once('draining', () => {
      if (state.parked) cancelUnlessDone(state.parked);
    });
    this.#park(link, state);
  }

  #park(link: AgentLink, state: LinkState): void {
    if (this.#closed || link.closed || link.draining || state.unsupported || state.parked || state.sessions.size >= MAX_SESSIONS_PER_LINK) return;
    let stream: ClientHttp2Stream;
    try {
      stream = link.openStream({ ':method': 'POST', ':path': RESTIC_REVERSE_PATH }, { endStream: false });
    } catch {
      return; // The link is going away.
    }
    state.parked = stream;
    let answered = false;
    stream.on('error', () => {});
    stream.once('response', (headers) => {
      answered = true;
      state.parked = null;
      const status = Number(headers[':status']);
      const repo = String(headers[RESTIC_REPO_HEADER] ?? '');
      if (status !== 200) {
        cancelUnlessDone(stream);
        if (status === 404) {
          state.unsupported = true;
          this.#log.debug({ node: link.nodeName }, 'agent does not carry restic connections');
        } else {
          setTimeout(() => this.#park(link, state), REPARK_AFTER_MS).unref();
        }
        return;
      }
      if (!isRepoName(repo)) {
        this.#log.warn({ node: link.nodeName }, 'agent named a malformed restic repository; connection refused');
        cancelUnlessDone(stream);
      } else {
        this.#serve(link, state, stream, repo);
      }
      this.#park(link, state);
    });
    stream.once('close', () => {
      if (state.parked === stream) state.parked = null;
      if (!answered && !link.closed) setTimeout(() => this.#park(link, state), REPARK_AFTER_MS).unref();
    });
  }

  #serve(link: AgentLink, state: LinkState, stream: ClientHttp2Stream, repoName: string): void {
    let repo: RepoDir;
    try {
      repo = new RepoDir(this.#root, link.nodeName, repoName);
    } catch (err) {
      this.#log.warn({ err, node: link.nodeName }, 'restic connection refused');
      return cancelUnlessDone(stream);
    }
    const duplex = new GatedDuplex(stream, link.qos);
    let session: ServerHttp2Session | null = null;
    this.#server.once('session', (s: ServerHttp2Session) => (session = s));
    this.#server.emit('connection', duplex);
    if (!session) return void duplex.destroy();
    const s: ServerHttp2Session = session;
    this.#scopes.set(s, repo);
    state.sessions.add(s);
    s.on('error', (err) => this.#log.debug({ err, node: link.nodeName }, 'restic session error'));
    const started = (): void => void s.setLocalWindowSize(INNER_SESSION_WINDOW);
    if (s.connecting) s.once('connect', started);
    else started();
    s.once('close', () => {
      state.sessions.delete(s);
      if (!duplex.destroyed) duplex.destroy();
      this.#park(link, state);
    });
    this.#log.debug({ node: link.nodeName, repo: repoName }, 'restic connected to its hub repository');
  }
}

/** The hub's restic repositories under DATA/restic, served to each node over its own link. */
export async function serveResticRepos(registry: NodeRegistry, dataDir: string, log: Logger): Promise<ResticReverseLinks> {
  return new ResticReverseLinks({ registry, root: await openRepoRoot(join(dataDir, 'restic')), log });
}
