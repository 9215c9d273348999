/**
 * The view feed's messages on the bus (view-feed.ts): what a holder's agents reported, or a
 * batch of Docker events, as gzip'd JSON. A message larger than the bus takes (NATS's
 * max_payload, 1 MiB by default; a few thousand containers can exceed it even compressed) is cut
 * into parts, each `[4-byte header length][JSON header][bytes]`, and joined again on arrival; a
 * replica publishes in order on one connection, so its parts arrive in order. Partial messages
 * are bounded in number and age. Peers are replicas of this cluster, yet what arrives is still
 * checked against the schemas below before anything is shown.
 */
import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';
import { z } from 'zod';
import { inventoryMessage } from '../../protocol/inventory.ts';

const zip = promisify(gzip);
const unzip = promisify(gunzip);

/** Room left in each bus message for the part header and NATS's own framing. */
const HEADER_ROOM = 512;
/** At most this many messages being joined at once, each for at most PARTIAL_MAX_MS. */
const MAX_PARTIAL = 16;
const PARTIAL_MAX_MS = 10_000;
/** What a joined message may inflate to (a node's whole inventory is far below). */
const MAX_INFLATED = 256 * 1024 * 1024;

const fleetEventBody = z.object({
  node: z.string().max(63),
  time: z.number(),
  type: z.string().max(300),
  action: z.string().max(300),
  id: z.string().max(300),
  name: z.string().max(300),
  detail: z.record(z.string(), z.string().max(300)),
});

export const viewMessage = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('node'),
    from: z.string(),
    node: z.string(),
    epoch: z.number().int(),
    agentVersion: z.string().max(200),
    /** Everything the holder knows of the node (a snapshot), not just what changed. */
    full: z.boolean(),
    reports: z.array(inventoryMessage),
  }),
  z.object({ kind: z.literal('events'), from: z.string(), events: z.array(fleetEventBody) }),
]);
export type ViewMessage = z.infer<typeof viewMessage>;

const partHeader = z.object({ id: z.string(), part: z.number().int().nonnegative(), parts: z.number().int().positive() });

/** A message as the bus messages that carry it (one, unless it is too large for one). */
export async function encodeView(message: ViewMessage, maxPayload: number, id: string): Promise<Uint8Array[]> {
  const body = await zip(Buffer.from(JSON.stringify(message)));
  const room = Math.max(1024, maxPayload - HEADER_ROOM);
  const parts = Math.max(1, Math.ceil(body.length / room));
  const out: Uint8Array[] = [];
  for (let part = 0; part < parts; part++) {
    const header = Buffer.from(JSON.stringify({ id, part, parts }));
    const length = Buffer.alloc(4);
    length.writeUInt32BE(header.length);
    out.push(Buffer.concat([length, header, body.subarray(part * room, (part + 1) * room)]));
  }
  return out;
}

/** Joins parts back into messages: `take` answers a whole message once its last part is in. */
export class ViewJoiner {
  readonly #partial = new Map<string, { chunks: Buffer[]; parts: number; at: number }>();

  async take(data: Uint8Array): Promise<ViewMessage | null> {
    const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (buf.length < 4) return null;
    const headerLength = buf.readUInt32BE(0);
    let header: z.infer<typeof partHeader>;
    try {
      header = partHeader.parse(JSON.parse(buf.subarray(4, 4 + headerLength).toString('utf8')));
    } catch {
      return null;
    }
    const chunk = buf.subarray(4 + headerLength);
    let body: Buffer;
    if (header.parts === 1) body = chunk;
    else {
      const now = Date.now();
      for (const [k, p] of this.#partial) if (now - p.at > PARTIAL_MAX_MS) this.#partial.delete(k);
      let p = this.#partial.get(header.id);
      if (!p) {
        if (header.part !== 0) return null;
        if (this.#partial.size >= MAX_PARTIAL) this.#partial.delete(this.#partial.keys().next().value as string);
        this.#partial.set(header.id, (p = { chunks: [], parts: header.parts, at: now }));
      }
      if (header.part !== p.chunks.length || header.parts !== p.parts) {
        this.#partial.delete(header.id); // a part went missing: the next snapshot or change mends it
        return null;
      }
      p.chunks.push(Buffer.from(chunk));
      if (p.chunks.length < p.parts) return null;
      this.#partial.delete(header.id);
      body = Buffer.concat(p.chunks);
    }
    try {
      const json = await unzip(body, { maxOutputLength: MAX_INFLATED });
      const parsed = viewMessage.safeParse(JSON.parse(json.toString('utf8')));
      return parsed.success ? parsed.data : null;
    } catch {
      return null;
    }
  }
}
