/**
 * Which Docker calls the UI must sign, and signing them in one place (issue 13). A node whose
 * agent reports `policy.signedIntent` refuses unsigned mutations (require "mutations") or every
 * gateway call (require "all"). Every request the UI sends to /docker/nodes/NAME/… goes through
 * api.ts's request helper (or signDocker for the log stream), which asks `dockerIntent` here for
 * the intent header; the signing itself (lib/intent.ts, with zod) is loaded only when needed.
 *
 * Pages ask `signingBlock(node, …)` before offering an action: with no key in this browser, or a
 * key the host does not list, the action is disabled with the reason and a way to fix it, rather
 * than sent to be refused.
 */
import { ApiError, post, setDockerSigner } from './api.ts';
import { fleet } from './live.ts';
import { browserKey, loadBrowserKey, type BrowserKey } from './operator-key.ts';
import { session } from './session.ts';
import { useStore } from './store.ts';
import type { NodeView } from './types.ts';

export const SIGNING_KEYS_PATH = '/account#signing-keys';
/** For what the UI cannot sign itself: terminals, and volume-file writes. */
export const USE_CONNECT = 'This host requires signed intent; use dockfleet connect.';

type NodeLike = Pick<NodeView, 'name' | 'policy'> | null | undefined;

/** 'mutations' or 'all' when the node's policy requires signed intent; null otherwise. */
export function signedIntentOf(node: NodeLike): 'mutations' | 'all' | null {
  return node?.policy?.signedIntent?.require ?? null;
}

function requiresSignature(node: NodeLike, method: string): boolean {
  const req = signedIntentOf(node);
  if (req === 'all') return true;
  return req === 'mutations' && method !== 'GET' && method !== 'HEAD';
}

/**
 * Why this browser cannot sign for the node, in a sentence; null when it can or need not.
 * `reads`: the action is a read (a log stream, an inspect), which only "all" hosts require signed.
 */
export function signingBlock(node: NodeLike, key: BrowserKey | null | undefined, reads = false): string | null {
  if (!requiresSignature(node, reads ? 'GET' : 'POST')) return null;
  if (!key) return `${node!.name} requires signed intent, and this browser has no signing key: make one under Account → Signing keys.`;
  const listed = node!.policy!.signedIntent!.operators;
  if (!listed.includes(key.fingerprint)) {
    return `${node!.name} requires signed intent, and its policy file does not list this browser's key (${key.fingerprint}).`;
  }
  return null;
}

/** The current user's browser key, read from IndexedDB on first use. */
export function useBrowserKey(): BrowserKey | null | undefined {
  const state = useStore(browserKey);
  const s = useStore(session);
  const user = s.status === 'signedIn' ? s.me.name : null;
  if (user && state?.user !== user) void loadBrowserKey(user);
  return state?.user === user ? state.key : undefined;
}

/** signingBlock for the node of this name, from the live fleet and this browser's key. */
export function useSigningBlock(nodeName: string, reads = false): string | null {
  const key = useBrowserKey();
  const f = useStore(fleet);
  const node = f.nodes?.find((n) => n.name === nodeName);
  if (!signedIntentOf(node)) return null;
  if (key === undefined) return `Checking this browser's signing key for ${nodeName}…`;
  return signingBlock(node, key, reads);
}

/**
 * signingBlock for several nodes at once (a stack's targets, the rows of a list): the reason for
 * each node this browser cannot sign for, by name; nodes it can sign for, or need not, are absent.
 */
export function useSigningBlocks(nodeNames: readonly string[]): Map<string, string> {
  const key = useBrowserKey();
  const f = useStore(fleet);
  const blocks = new Map<string, string>();
  for (const name of nodeNames) {
    const node = f.nodes?.find((n) => n.name === name);
    if (!signedIntentOf(node)) continue;
    const reason = key === undefined ? `Checking this browser's signing key for ${name}…` : signingBlock(node, key);
    if (reason) blocks.set(name, reason);
  }
  return blocks;
}

const NODE_PATH = /^\/docker\/nodes\/([^/?#]+)(\/[^?#]*)?(\?[^#]*)?$/;

/**
 * The intent for one call to /docker/nodes/NAME/…, when the node requires it. The engine path is
 * what the browser will send after URL normalisation, minus the node prefix: what the hub passes on.
 */
async function dockerIntent(method: string, path: string, body: BodyInit | undefined): Promise<{ headers: Record<string, string>; body?: BodyInit }> {
  const url = new URL(path, location.href);
  const m = NODE_PATH.exec(url.pathname + url.search);
  if (!m) return { headers: {} };
  const name = decodeURIComponent(m[1]!);
  const node = fleet.get().nodes?.find((n) => n.name === name);
  if (!requiresSignature(node, method.toUpperCase())) return { headers: {} };
  const s = session.get();
  const key = s.status === 'signedIn' ? await loadBrowserKey(s.me.name) : null;
  const block = signingBlock(node, key, method === 'GET' || method === 'HEAD');
  if (block) throw new ApiError(403, 'signed_intent_required', block);
  const { signDockerCall } = await import('./intent.ts');
  return signDockerCall(key!, name, method.toUpperCase(), `${m[2] ?? '/'}${m[3] ?? ''}`, body);
}

setDockerSigner(dockerIntent);

/**
 * This browser's key when a stack deploy should ask the hub to hold its jobs for signing: the
 * browser has a key and some node of the fleet requires signed intent (jobs for unsigned nodes
 * are signed too, which they ignore). Null: deploy as before, unsigned.
 */
export async function deploySigner(): Promise<BrowserKey | null> {
  const s = session.get();
  if (s.status !== 'signedIn' || !(fleet.get().nodes ?? []).some((n) => signedIntentOf(n) !== null)) return null;
  return loadBrowserKey(s.me.name);
}

/** Signs the jobs of a rollout the hub holds for signing, and lets each go. */
export async function signRolloutJobs(key: BrowserKey, stack: string, proposal: Parameters<typeof import('./intent.ts')['signRollout']>[2]): Promise<void> {
  const { signRollout } = await import('./intent.ts');
  try {
    await signRollout(key, stack, proposal, async (id, intent) => void (await post(`/api/v1/jobs/${encodeURIComponent(id)}/intent`, { intent })));
  } catch (err) {
    throw new ApiError(
      err instanceof ApiError ? err.status : 400,
      'signing_failed',
      `The deploy was filed but its jobs could not be signed (${err instanceof Error ? err.message : String(err)}); unsigned jobs fail after five minutes.`,
    );
  }
}
