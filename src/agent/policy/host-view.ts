/**
 * What the policy's host pass may ask about this host: the engine's own view of volumes and
 * containers, and where a path really leads. The pure checks never see it; tests and the
 * agent inject a real one (engineHostView, built on the agent's EngineClient).
 */
import type { IncomingMessage } from 'node:http';
import type { EngineClient } from '../engine-client.ts';
import { readBounded } from '../../lib/read-bounded.ts';
import { parseJsonLine } from '../../lib/ndjson.ts';
import type { JsonObject } from './go-fields.ts';
import { isRecord } from './go-fields.ts';
import { resolveHostPath, type Resolution } from './resolve-host-path.ts';

export interface HostView {
  /** GET /volumes/NAME; null when there is no such volume. */
  inspectVolume(name: string): Promise<JsonObject | null>;
  /** GET /containers/REF/json; null when there is no such container. */
  inspectContainer(ref: string): Promise<JsonObject | null>;
  /** GET /containers/json?all=1 (each with Names and Mounts). */
  listContainers(): Promise<JsonObject[]>;
  /** GET /volumes (each with Name and Options). */
  listVolumes(): Promise<JsonObject[]>;
  /** GET /info. */
  engineInfo(): Promise<JsonObject>;
  /** The engine's sockets as this agent reaches them (before resolution). */
  engineSockets(): readonly string[];
  resolvePath(path: string): Promise<Resolution>;
}

const MAX_ANSWER = 32 * 1024 * 1024;
const DEADLINE_MS = 10_000;

/** Thrown when the engine cannot answer a question the policy must ask (the call is refused). */
export class HostViewError extends Error {}

async function answer(engine: EngineClient, path: string): Promise<unknown> {
  let res: IncomingMessage;
  try {
    res = await engine.raw({ path, timeoutMs: DEADLINE_MS });
  } catch (err) {
    throw new HostViewError(`the engine did not answer ${path}: ${(err as Error).message}`);
  }
  const raw = await readBounded(res as AsyncIterable<Buffer>, MAX_ANSWER);
  if (raw === null) {
    res.destroy();
    throw new HostViewError(`the engine's answer to ${path} is too large`);
  }
  if (res.statusCode === 404) return null;
  if (res.statusCode !== 200) throw new HostViewError(`the engine answered ${res.statusCode ?? 0} to ${path}`);
  const parsed = parseJsonLine(raw.toString('utf8'));
  if (!parsed.ok) throw new HostViewError(`the engine sent malformed JSON for ${path}`);
  return parsed.value;
}

async function object(engine: EngineClient, path: string): Promise<JsonObject | null> {
  const value = await answer(engine, path);
  if (value === null || isRecord(value)) return value;
  throw new HostViewError(`the engine's answer to ${path} is not an object`);
}

/** How long the engine's /info (for DockerRootDir, which changes only when the engine restarts) is reused. */
const INFO_TTL_MS = 30_000;

export function engineHostView(engine: EngineClient): HostView {
  let info: { at: number; value: Promise<JsonObject> } | null = null;
  return {
    inspectVolume: (name) => object(engine, `/volumes/${encodeURIComponent(name)}`),
    inspectContainer: (ref) => object(engine, `/containers/${encodeURIComponent(ref)}/json`),
    async listContainers() {
      const list = await answer(engine, '/containers/json?all=1');
      if (!Array.isArray(list)) throw new HostViewError("the engine's container list is not a list");
      return list.filter(isRecord);
    },
    async listVolumes() {
      const body = await object(engine, '/volumes');
      const list = body?.Volumes ?? [];
      return Array.isArray(list) ? list.filter(isRecord) : [];
    },
    engineInfo() {
      if (info === null || Date.now() - info.at > INFO_TTL_MS) {
        const value = object(engine, '/info').then((answer) => answer ?? {});
        info = { at: Date.now(), value };
        value.catch(() => (info = null));
      }
      return info.value;
    },
    engineSockets: () => [engine.socketPath],
    resolvePath: resolveHostPath,
  };
}
