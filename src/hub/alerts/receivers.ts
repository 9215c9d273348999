/**
 * The receivers the admin configures: a name, a format and a target (URL plus optional
 * headers, e.g. a bearer token). The target is sealed by the secret box, bound to the
 * receiver's id; views show only the URL's scheme and host and the header names.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { DockfleetError } from '../../protocol/errors.ts';
import type { AlertStore, ReceiverRecord } from '../../store/alert-store.ts';
import type { SecretBox } from '../secret-box.ts';

export const RECEIVER_FORMATS = ['json', 'ntfy', 'slack'] as const;

const headerName = z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$/, 'a header name');
const headerValue = z
  .string()
  .max(4000)
  .regex(/^[^\r\n]*$/, 'one line');
const url = z
  .string()
  .max(2000)
  .refine((v) => {
    try {
      const u = new URL(v);
      return u.protocol === 'https:' || u.protocol === 'http:';
    } catch {
      return false;
    }
  }, 'an http or https URL');

export const receiverBody = z.strictObject({
  name: z.string().trim().min(1).max(100),
  format: z.enum(RECEIVER_FORMATS),
  url,
  headers: z.record(headerName, headerValue).optional(),
  enabled: z.boolean().optional(),
});
export const receiverPatch = z.strictObject({
  name: z.string().trim().min(1).max(100).optional(),
  format: z.enum(RECEIVER_FORMATS).optional(),
  url: url.optional(),
  headers: z.record(headerName, headerValue).optional(),
  enabled: z.boolean().optional(),
});
export type ReceiverBody = z.infer<typeof receiverBody>;
export type ReceiverPatch = z.infer<typeof receiverPatch>;

export interface ReceiverTarget {
  url: string;
  headers: Record<string, string>;
}

export interface ReceiverView {
  id: string;
  name: string;
  format: ReceiverRecord['format'];
  /** Scheme and host only: paths and queries often hold the secret (Slack, ntfy topics). */
  target: string;
  headerNames: string[];
  enabled: boolean;
  createdAt: string;
  /** The latest test send, kept across restarts: when, 2xx or not, the HTTP status, the error. */
  lastTest: { at: string; ok: boolean; status: number | null; error: string | null } | null;
}

const context = (id: string): string => `alert-receiver:${id}`;
const hintOf = (raw: string): string => `${new URL(raw).protocol}//${new URL(raw).host}/…`;

export class Receivers {
  readonly #store: AlertStore;
  readonly #box: SecretBox;

  constructor(store: AlertStore, box: SecretBox) {
    this.#store = store;
    this.#box = box;
  }

  async list(): Promise<ReceiverView[]> {
    return (await this.#store.listReceivers()).map(viewOf);
  }

  async require(id: string): Promise<ReceiverRecord> {
    const r = await this.#store.getReceiver(id);
    if (!r) throw new DockfleetError('not_found', `no receiver ${id}`);
    return r;
  }

  async create(body: ReceiverBody): Promise<ReceiverView> {
    const id = `rcv_${randomUUID()}`;
    const record = this.#sealed(id, body.name, body.format, { url: body.url, headers: body.headers ?? {} }, body.enabled ?? true, Date.now(), null);
    await this.#store.insertReceiver(record);
    return viewOf(record);
  }

  async update(id: string, patch: ReceiverPatch): Promise<ReceiverView> {
    const current = await this.require(id);
    const target = this.target(current);
    const next = this.#sealed(
      id,
      patch.name ?? current.name,
      patch.format ?? current.format,
      { url: patch.url ?? target.url, headers: patch.headers ?? target.headers },
      patch.enabled ?? current.enabled,
      current.createdAt,
      current.lastTest,
    );
    await this.#store.updateReceiver(next);
    return viewOf(next);
  }

  async remove(id: string): Promise<void> {
    if (!(await this.#store.deleteReceiver(id))) throw new DockfleetError('not_found', `no receiver ${id}`);
  }

  target(record: ReceiverRecord): ReceiverTarget {
    return JSON.parse(this.#box.openText(record.sealedTarget, context(record.id))) as ReceiverTarget;
  }

  #sealed(id: string, name: string, format: ReceiverRecord['format'], target: ReceiverTarget, enabled: boolean, createdAt: number, lastTest: ReceiverRecord['lastTest']): ReceiverRecord {
    return {
      id,
      name,
      format,
      enabled,
      createdAt,
      lastTest,
      sealedTarget: this.#box.seal(JSON.stringify(target), context(id)),
      targetHint: hintOf(target.url),
      headerNames: Object.keys(target.headers).sort(),
    };
  }
}

export function viewOf(r: ReceiverRecord): ReceiverView {
  return {
    id: r.id,
    name: r.name,
    format: r.format,
    target: r.targetHint,
    headerNames: r.headerNames,
    enabled: r.enabled,
    createdAt: new Date(r.createdAt).toISOString(),
    lastTest: r.lastTest && { at: new Date(r.lastTest.at).toISOString(), ok: r.lastTest.ok, status: r.lastTest.status, error: r.lastTest.error },
  };
}
