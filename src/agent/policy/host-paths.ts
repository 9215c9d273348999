/**
 * Host paths a container may bind-mount. Sources are compared after lexical normalisation
 * (`//`, `/./`, `/x/..`, trailing slashes), which is how the kernel resolves them as long as
 * no symlinks are involved. Symlinks are NOT resolved: a directory listed in
 * allow.bindMounts must not be writable by containers, or one container can plant a symlink
 * there (to `/`, say) that a later bind mount follows.
 */
import { normaliseDir, type PolicyAllow } from './policy-file.ts';
import { quote, type Say } from './refusal-text.ts';

/** Engine sockets whose exposure equals root on the host; their parent directories count too. */
export const ENGINE_SOCKETS: readonly string[] = [
  '/var/run/docker.sock',
  '/run/docker.sock',
  '/var/run/containerd/containerd.sock',
  '/run/containerd/containerd.sock',
];

/** Any path ending like this is treated as an engine socket (rootless and custom setups). */
const SOCKET_NAME = /(docker|containerd)\.sock$/;

/** Whether `path` is `dir` or inside it (both normalised). */
export function isUnder(path: string, dir: string): boolean {
  return dir === '/' || path === dir || path.startsWith(`${dir}/`);
}

/** Null when `source` may be bind-mounted, else the refusal. */
export function checkBindSource(source: string, allow: PolicyAllow, say: Say): string | null {
  if (!source.startsWith('/') || source.includes('\0')) {
    return say(`a bind mount from ${quote(source)}`, 'bind sources must be absolute host paths');
  }
  const path = normaliseDir(source);
  if (path === '/') {
    if (allow.bindRoot) return null;
    const spelled = source === '/' ? '' : `, written ${quote(source)}`;
    return say(`bind-mounting the host root "/"${spelled}`, 'allow.bindRoot is false');
  }
  if (!allow.dockerSocket && (SOCKET_NAME.test(path) || ENGINE_SOCKETS.some((sock) => isUnder(sock, path)))) {
    return say(`bind-mounting the Docker socket or a directory holding it, ${quote(path)}`, 'allow.dockerSocket is false');
  }
  if (allow.bindMounts !== null && !allow.bindMounts.some((dir) => isUnder(path, dir))) {
    const rule = allow.bindMounts.length === 0 ? 'allow.bindMounts is empty' : `allow.bindMounts is ${allow.bindMounts.join(', ')}`;
    return say(`bind-mounting ${quote(path)}, outside the allowed host paths`, rule);
  }
  return null;
}
