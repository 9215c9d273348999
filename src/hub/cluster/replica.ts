/**
 * One hub replica's place in the cluster (issue 17), assembled: the bus, its membership (with
 * this hub's agent-facing URL, which agents are handed for failover), agent ownership, a replica
 * certificate from the shared CA, the peer port (a forwarded stream is joined to the agent's
 * link only if this replica holds that node at the epoch it names, else 421) and the sessions to
 * the other replicas' peer ports. It offers the node registry what it needs (RegistryCluster):
 * claims, owners, RemoteLinks to a node's holder, and two small bus messages — a node record
 * changed, and work was filed for a node — so every replica stays current — and raw byte
 * subjects for the view feed (view-feed.ts: what each holder's agents report). close() leaves
 * cleanly: off the member list, its claims released, peer port and sessions closed, bus last.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../lib/logger.ts';
import type { ClusterConfig } from '../config.ts';
import { REPLICA_ID } from '../config.ts';
import type { AgentLink } from '../gateway/agent-link.ts';
import type { ClusterEvents, RegistryCluster } from '../node-registry.ts';
import { issueReplicaCert, type HubPki } from '../pki.ts';
import { Bus } from './bus.ts';
import { Members } from './members.ts';
import { Ownership, type OwnerAnswer, type OwnershipOptions } from './ownership.ts';
import type { PeerRefusal } from './peer-protocol.ts';
import { startPeerServer, type PeerServer } from './peer-server.ts';
import { PeerSessions } from './peer-sessions.ts';
import { RemoteLink } from './remote-link.ts';

export const REPLICA_ID_FILE = 'replica-id';

export interface ReplicaOptions {
  config: ClusterConfig;
  dataDir: string;
  /** This hub's URL as agents reach it. */
  agentUrl: string;
  pki: Pick<HubPki, 'caCertPem' | 'caKeyPem'>;
  log: Logger;
  /** The local link this replica holds for a node (by name), if any: what the peer port serves. */
  localLink: (nodeName: string) => { link: AgentLink; nodeId: string } | null;
  /** Tests shorten heartbeats and sweeps. */
  tuning?: { heartbeatMs?: number; expireMs?: number } & OwnershipOptions;
}

/** The replica id: the flag's, else the one kept in DIR/replica-id (made once). */
export async function replicaIdFor(config: ClusterConfig, dataDir: string): Promise<string> {
  if (config.replicaId !== null) return config.replicaId;
  const file = join(dataDir, REPLICA_ID_FILE);
  const kept = await readFile(file, 'utf8').then(
    (s) => s.trim(),
    () => null,
  );
  if (kept !== null) {
    if (!REPLICA_ID.test(kept)) throw new Error(`${file} does not hold a replica id (1-63 of a-z 0-9 -)`);
    return kept;
  }
  const made = `r-${randomBytes(5).toString('hex')}`;
  await writeFile(file, `${made}\n`, { mode: 0o600, flag: 'wx' });
  return made;
}

export class Replica extends EventEmitter<ClusterEvents> implements RegistryCluster {
  readonly replicaId: string;
  readonly bus: Bus;
  readonly members: Members;
  readonly ownership: Ownership;
  readonly peerUrl: string;
  readonly #server: PeerServer;
  readonly #sessions: PeerSessions;
  readonly #log: Logger;
  readonly #remotes = new Map<string, RemoteLink>();
  readonly #subs: Array<{ unsubscribe(): void }> = [];
  #closed = false;
  #ownersSoon: NodeJS.Immediate | null = null;

  private constructor(parts: { id: string; bus: Bus; members: Members; ownership: Ownership; server: PeerServer; sessions: PeerSessions; peerUrl: string; log: Logger }) {
    super();
    this.replicaId = parts.id;
    this.bus = parts.bus;
    this.members = parts.members;
    this.ownership = parts.ownership;
    this.#server = parts.server;
    this.#sessions = parts.sessions;
    this.peerUrl = parts.peerUrl;
    this.#log = parts.log;
    this.ownership.on('lost', (node, epoch) => this.emit('lost', node, epoch));
    this.ownership.on('renewed', (node, from, to) => this.emit('renewed', node, from, to));
    // One 'owners' for a burst of changes (a watch delivers claims in batches; a thousand agents
    // connecting make a thousand), naming the nodes whose claims changed, so that a listener looks
    // at those alone: walking every node on each of 10,000 connects was most of a replica's work.
    // A fresh copy, a member coming or going and the bus going down name none: any node may differ.
    let changed: Set<string> | null = new Set();
    const owners = (node: string | null): void => {
      if (node === null) changed = null;
      else changed?.add(node);
      if (this.#ownersSoon) return;
      this.#ownersSoon = setImmediate(() => {
        this.#ownersSoon = null;
        const nodes = changed;
        changed = new Set();
        this.emit('owners', nodes);
      });
    };
    this.ownership.on('changed', owners);
    this.members.on('changed', () => owners(null));
    this.bus.on('down', () => owners(null));
    this.bus.on('up', () => this.emit('up'));
    this.#follow('nodes.changed', (id) => this.emit('nodeChanged', id));
    this.#follow('jobs.nudge', (name) => this.emit('nudged', name));
  }

  /** Joins the cluster: bus, membership, ownership, then the peer port (its URL is what the others dial). */
  static async start(opts: ReplicaOptions): Promise<Replica> {
    const id = await replicaIdFor(opts.config, opts.dataDir);
    const log = opts.log.child({ replica: id });
    const peerHostForCert = opts.config.peerUrl ? new URL(opts.config.peerUrl).hostname.replace(/^\[|\]$/g, '') : opts.config.peerHost;
    const cert = await issueReplicaCert(opts.pki, id, [peerHostForCert]);
    const tls = { key: cert.keyPem, cert: cert.certPem, ca: opts.pki.caCertPem };
    let ownership: Ownership | null = null;
    const server = await startPeerServer({
      tls,
      host: opts.config.peerHost,
      port: opts.config.peerPort,
      log,
      resolve: (nodeName, epoch) => {
        const local = opts.localLink(nodeName);
        if (!local || !ownership) return refusal('node_offline', `node ${nodeName} is not held by replica ${id}`);
        if (!ownership.holds(local.nodeId, epoch)) return refusal('node_moved', `replica ${id} does not hold node ${nodeName} at epoch ${epoch}`);
        return local.link;
      },
    });
    const host = opts.config.peerHost.includes(':') ? `[${opts.config.peerHost}]` : opts.config.peerHost;
    const peerUrl = opts.config.peerUrl ?? `https://${host}:${server.port}`;
    let bus: Bus | null = null;
    try {
      bus = await Bus.connect({ servers: [...opts.config.servers], cluster: opts.config.name, name: id, log });
      const members = await Members.join(bus, { id, peerUrl, agentUrl: opts.agentUrl, startedAt: Date.now(), draining: false }, log, opts.tuning ?? {});
      ownership = await Ownership.open(bus, members, log, opts.tuning ?? {});
      log.info({ peerUrl, agentUrl: opts.agentUrl }, 'joined the hub replicas');
      return new Replica({ id, bus, members, ownership, server, sessions: new PeerSessions(tls), peerUrl, log });
    } catch (err) {
      await server.close();
      await bus?.close();
      throw err;
    }
  }

  get busUp(): boolean {
    return this.bus.up && !this.#closed;
  }

  claim(nodeId: string): Promise<{ won: true; epoch: number } | { won: false; reason: 'superseded' | 'bus_down' }> {
    return this.ownership.claim(nodeId);
  }

  async release(nodeId: string, epoch: number): Promise<void> {
    await this.ownership.release(nodeId, epoch);
  }

  owner(nodeId: string): OwnerAnswer {
    return this.ownership.owner(nodeId);
  }

  localEpoch(nodeId: string): number | undefined {
    return this.ownership.localEpoch(nodeId);
  }

  /** A RemoteLink to `replica`, which holds the node at `epoch` (one per node and epoch), or null if that replica is not a live member. */
  remote(node: { id: string; name: string }, replica: string, epoch: number): RemoteLink | null {
    const key = `${node.id}@${epoch}`;
    const known = this.#remotes.get(key);
    if (known && !known.closed) return known;
    const member = this.members.list().find((m) => m.id === replica);
    if (!member || this.#closed) return null;
    for (const [k, link] of this.#remotes) if (k.startsWith(`${node.id}@`) || link.closed) this.#remotes.delete(k);
    const link = new RemoteLink({ session: this.#sessions.session(member.peerUrl), nodeId: node.id, nodeName: node.name, epoch });
    this.#remotes.set(key, link);
    return link;
  }

  /** Tells every replica (this one too) that `subject` happened for `value` (a node id or name). */
  publish(subject: 'nodes.changed' | 'jobs.nudge', value: string): void {
    if (!this.busUp) return; // each replica reloads everything when the bus is back
    try {
      this.bus.nc.publish(this.bus.subject(subject), value);
    } catch (err) {
      this.#log.debug({ subject, err: (err as Error).message }, 'could not publish on the bus');
    }
  }

  /** Leaves: off the member list, claims released (the agents move on), peer port and sessions closed
   * (streams in flight get `graceMs` to end first), bus last. */
  async close(graceMs = 0): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#ownersSoon) clearImmediate(this.#ownersSoon);
    for (const sub of this.#subs) sub.unsubscribe();
    await this.members.leave();
    await Promise.all([...this.ownership.heldNodes()].map(([node, epoch]) => this.ownership.release(node, epoch)));
    this.ownership.close();
    this.#sessions.close(graceMs);
    await this.#server.close(graceMs);
    await this.bus.close();
  }

  /** Follows a subject carrying bytes (the view feed's) until close. */
  listen(subject: string, handle: (data: Uint8Array) => void): void {
    const sub = this.bus.nc.subscribe(this.bus.subject(subject), {
      callback: (err, msg) => {
        if (!err) handle(msg.data);
      },
    });
    this.#subs.push(sub);
  }

  /** Publishes bytes on a subject; false (nothing sent) while the bus is down. */
  send(subject: string, data: Uint8Array): boolean {
    if (!this.busUp) return false;
    try {
      this.bus.nc.publish(this.bus.subject(subject), data);
      return true;
    } catch (err) {
      this.#log.debug({ subject, err: (err as Error).message }, 'could not publish on the bus');
      return false;
    }
  }

  /** The largest message the bus takes (the server's max_payload; NATS's default 1 MiB until known). */
  get maxPayload(): number {
    return this.bus.nc.info?.max_payload ?? 1024 * 1024;
  }

  #follow(subject: string, handle: (value: string) => void): void {
    this.listen(subject, (data) => handle(new TextDecoder().decode(data)));
  }
}

function refusal(refused: PeerRefusal, message: string): { refused: PeerRefusal; message: string } {
  return { refused, message };
}
