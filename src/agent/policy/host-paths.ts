/**
 * Host paths a container may bind-mount. checkBindSource judges the text after lexical
 * normalisation (`//`, `/./`, `/x/..`, trailing slashes): the first, pure pass. The host pass
 * (host-path-judge.ts) then resolves the path on the host (resolve-host-path.ts) and judges
 * where it really leads with judgeResolvedSource: the same rules, plus kernel filesystems,
 * the engine's own socket and data root, and directories that containers can write.
 */
import { normaliseDir, type PolicyAllow } from './policy-file.ts';
import { quote, type Say } from './refusal-text.ts';
import type { Resolution } from './resolve-host-path.ts';

/** Engine sockets whose exposure equals root on the host; their parent directories count too. */
export const ENGINE_SOCKETS: readonly string[] = ['/var/run/docker.sock', '/run/docker.sock', '/var/run/containerd/containerd.sock', '/run/containerd/containerd.sock'];

/** Any path ending like this is treated as an engine socket (rootless and custom setups). */
const SOCKET_NAME = /(docker|containerd)\.sock$/;

/** Whether `path` is `dir` or inside it (both normalised). */
export function isUnder(path: string, dir: string): boolean {
  return dir === '/' || path === dir || path.startsWith(`${dir}/`);
}

/**
 * Null when `source` may be bind-mounted, else the refusal. `spelled` is how the request
 * wrote the path when `source` is where it resolved to on the host.
 */
export function checkBindSource(source: string, allow: PolicyAllow, say: Say, spelled?: string): string | null {
  if (!source.startsWith('/') || source.includes('\0')) {
    return say(`a bind mount from ${quote(source)}`, 'bind sources must be absolute host paths');
  }
  const path = normaliseDir(source);
  const via = spelled !== undefined && normaliseDir(spelled) !== path ? `, as ${quote(spelled)} resolves on this host` : '';
  if (path === '/') {
    if (allow.bindRoot) return null;
    const written = via !== '' || source === '/' ? via : `, written ${quote(source)}`;
    return say(`bind-mounting the host root "/"${written}`, 'allow.bindRoot is false');
  }
  if (!allow.dockerSocket && (SOCKET_NAME.test(path) || ENGINE_SOCKETS.some((sock) => isUnder(sock, path)))) {
    return say(`bind-mounting the Docker socket or a directory holding it, ${quote(path)}${via}`, 'allow.dockerSocket is false');
  }
  if (allow.bindMounts !== null && !allow.bindMounts.some((dir) => isUnder(path, dir))) {
    const rule = allow.bindMounts.length === 0 ? 'allow.bindMounts is empty' : `allow.bindMounts is ${allow.bindMounts.join(', ')}`;
    return say(`bind-mounting ${quote(path)}, outside the allowed host paths${via}`, rule);
  }
  return null;
}

/** What the host pass knows about the engine and its containers, all paths resolved. */
export interface HostFacts {
  /** The engine's sockets as this agent reaches them. */
  readonly engineSockets: readonly string[];
  /** The engine's DockerRootDir; null when the engine did not say. */
  readonly engineRoot: string | null;
  /** Host directories that an existing container has mounted read-write, and by whom. */
  readonly writable: ReadonlyArray<{ readonly dir: string; readonly by: string }>;
}

const KERNEL_DIRS = ['/proc', '/sys'];

/** Null when the path that `spelled` resolved to may be bind-mounted, else the refusal. */
export function judgeResolvedSource(spelled: string, resolved: Resolution, allow: PolicyAllow, say: Say, facts: HostFacts): string | null {
  if (resolved.kind === 'unresolvable') {
    return say(`a bind mount from ${quote(spelled)}, which cannot be resolved on this host (${resolved.error})`, 'host paths the agent cannot resolve are refused');
  }
  if (resolved.kind === 'kernel') {
    const listed = allow.bindMounts?.some((dir) => KERNEL_DIRS.some((k) => isUnder(dir, k)) && isUnder(resolved.path, dir));
    if (listed) return null;
    return say(
      `bind-mounting ${quote(spelled)}, which leads into /proc or /sys at ${quote(resolved.path)}`,
      'kernel filesystems are refused unless allow.bindMounts lists a directory under /proc or /sys holding the path',
    );
  }
  const path = resolved.path;
  const refusal = checkBindSource(path, allow, say, spelled);
  if (refusal) return refusal;
  // allow.bindRoot has said yes to "/", which holds the engine's socket and data by definition.
  if (path === '/') return null;
  const via = normaliseDir(spelled) !== path ? `, as ${quote(spelled)} resolves on this host` : '';
  if (!allow.dockerSocket && facts.engineSockets.some((sock) => isUnder(sock, path))) {
    return say(`bind-mounting the Docker socket or a directory holding it, ${quote(path)}${via}`, 'allow.dockerSocket is false');
  }
  const root = facts.engineRoot;
  if (root !== null && !allow.dockerSocket && isUnder(root, path)) {
    return say(`bind-mounting the engine's data directory or a directory holding it, ${quote(path)}${via}`, 'allow.dockerSocket is false');
  }
  if (allow.containerWritableBindSources) return null;
  if (root !== null && isUnder(path, root)) {
    return say(`bind-mounting ${quote(path)}${via}, inside the engine's data directory ${quote(root)}`, 'allow.containerWritableBindSources is false');
  }
  const writer = facts.writable.find((w) => path !== w.dir && isUnder(path, w.dir));
  if (writer) {
    return say(
      `bind-mounting ${quote(path)}${via}, inside ${quote(writer.dir)}, which container ${quote(writer.by, 80)} can write (it could swap a part of the path for a symlink)`,
      'allow.containerWritableBindSources is false',
    );
  }
  return null;
}
