/**
 * Pulls an image on one node through the hub's Docker endpoint and reports Docker's NDJSON
 * progress per layer as it streams. Stored registry credentials are named by id (the hub turns
 * them into X-Registry-Auth; the browser never sees the secret).
 */
import { dockerPath, request } from './api.ts';

export interface LayerProgress {
  id: string;
  status: string;
  current: number;
  total: number;
}

export interface PullState {
  layers: LayerProgress[];
  /** The last message without a layer ("Pulling from …", "Digest: …", "Status: …"). */
  message: string;
}

/** Folds one progress event into the state (pure; exported for tests). */
export function foldPullEvent(state: PullState, ev: { id?: string; status?: string; progressDetail?: { current?: number; total?: number } }): PullState {
  if (!ev.id || !ev.status || /^Pulling from/.test(ev.status)) return { ...state, message: ev.status ?? state.message };
  const layers = state.layers.slice();
  const i = layers.findIndex((l) => l.id === ev.id);
  const prev = i >= 0 ? layers[i]! : { id: ev.id, status: '', current: 0, total: 0 };
  const next = { id: ev.id, status: ev.status, current: ev.progressDetail?.current ?? (/complete|exists/i.test(ev.status) ? prev.total : prev.current), total: ev.progressDetail?.total ?? prev.total };
  if (i >= 0) layers[i] = next;
  else layers.push(next);
  return { layers, message: state.message };
}

export async function pullImage(node: string, image: string, opts: { registryId?: string; signal?: AbortSignal; onProgress: (s: PullState) => void }): Promise<void> {
  const at = image.lastIndexOf('@');
  const colon = image.lastIndexOf(':');
  const hasTag = at < 0 && colon > image.lastIndexOf('/');
  const query = new URLSearchParams({ fromImage: hasTag || at >= 0 ? image : `${image}:latest` });
  const res = await request('POST', dockerPath(node, `/images/create?${query}`), {
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.registryId ? { headers: { 'X-Dockfleet-Registry': opts.registryId } } : {}),
  });
  let state: PullState = { layers: [], message: 'Starting…' };
  const reader = res.body?.getReader();
  if (!reader) return;
  const decoder = new TextDecoder();
  let rest = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    rest += decoder.decode(value, { stream: true });
    const parts = rest.split('\n');
    rest = parts.pop() ?? '';
    for (const line of parts) {
      if (!line.trim()) continue;
      let ev: { id?: string; status?: string; error?: string; progressDetail?: { current?: number; total?: number } };
      try {
        ev = JSON.parse(line) as typeof ev;
      } catch {
        continue;
      }
      if (ev.error) throw new Error(ev.error);
      state = foldPullEvent(state, ev);
    }
    opts.onProgress(state);
  }
}
