/** An image that runs this machine's own `node` in a test engine, for backends busybox cannot
 * be (h2c, gRPC, TLS): the `node` binary, the shared libraries `ldd` lists for it (at the paths
 * the loader looks for them), a busybox `sh`, `/tmp` and a passwd file. No registry is needed:
 * the tar is streamed into the engine's import (`POST /images/create?fromSrc=-`), once per
 * engine. A container runs it as `node /app/server.mjs` with `/app` bind-mounted from a temp dir:
 *
 *   const image = await nodeImage(engine);
 *   await runContainer(engine, { image, cmd: ['node', '/app/server.mjs'], hostConfig: { Binds: [`${dir}:/app:ro`] } });
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import { promisify } from 'node:util';
import tar from 'tar-stream';
import type { TestEngine } from './engines.ts';

const execFileP = promisify(execFile);

export const NODE_IMAGE = 'dockfleet-test/node:latest';

const BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'].find((p) => fs.existsSync(p));

interface ImageFile {
  path: string;
  source: string;
  mode: number;
}

/** The files of the image: `node` at /usr/bin/node and /bin/node, each library at the path ldd names. */
async function imageFiles(): Promise<ImageFile[]> {
  const node = fs.realpathSync(process.execPath);
  const { stdout } = await execFileP('ldd', [node]);
  const files: ImageFile[] = [{ path: 'usr/bin/node', source: node, mode: 0o755 }];
  for (const line of stdout.split('\n')) {
    // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)"; vdso has no file.
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
    if (!m) continue;
    files.push({ path: m[1]!.slice(1), source: fs.realpathSync(m[1]!), mode: 0o755 });
  }
  if (BUSYBOX) files.push({ path: 'bin/busybox', source: BUSYBOX, mode: 0o755 });
  return files;
}

/** Packs the image tar, streaming each file from disk (node alone is ~100 MB). */
async function packImage(): Promise<tar.Pack> {
  const files = await imageFiles();
  const pack = tar.pack();
  const dirs = new Set<string>(['tmp']);
  for (const f of files) {
    const parts = f.path.split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  void (async () => {
    try {
      for (const dir of [...dirs].sort()) pack.entry({ name: `${dir}/`, type: 'directory', mode: dir === 'tmp' ? 0o1777 : 0o755, uid: 0, gid: 0 });
      pack.entry({ name: 'etc/passwd', mode: 0o644 }, 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
      pack.entry({ name: 'etc/group', mode: 0o644 }, 'root:x:0:\nnogroup:x:65534:\n');
      if (BUSYBOX) {
        pack.entry({ name: 'bin/sh', type: 'symlink', linkname: 'busybox' });
        pack.entry({ name: 'bin/node', type: 'symlink', linkname: '/usr/bin/node' });
      }
      for (const f of files) {
        const size = fs.statSync(f.source).size;
        await new Promise<void>((resolve, reject) => {
          const entry = pack.entry({ name: f.path, size, mode: f.mode, uid: 0, gid: 0 }, (err) => (err ? reject(err) : resolve()));
          fs.createReadStream(f.source).on('error', reject).pipe(entry);
        });
      }
      pack.finalize();
    } catch (err) {
      pack.destroy(err as Error);
    }
  })();
  return pack;
}

async function importImage(engine: TestEngine): Promise<string> {
  const [repo, tag] = NODE_IMAGE.split(':') as [string, string];
  const changes = encodeURIComponent('CMD ["node"]');
  const pack = await packImage();
  const text = await new Promise<string>((resolve, reject) => {
    const req = http.request(
      {
        socketPath: engine.socketPath,
        method: 'POST',
        agent: false,
        path: `/images/create?fromSrc=-&repo=${encodeURIComponent(repo)}&tag=${tag}&changes=${changes}`,
        headers: { Host: 'docker', 'Content-Type': 'application/x-tar' },
      },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`${res.statusCode}: ${body.trim()}`))));
        res.on('error', reject);
      },
    );
    req.setTimeout(120_000, () => req.destroy(new Error('timed out after 120 s')));
    req.on('error', reject);
    pack.on('error', (err) => req.destroy(err));
    pack.pipe(req);
  }).catch((err: Error) => {
    throw new Error(`${engine.name}: importing ${NODE_IMAGE} failed: ${err.message}`);
  });
  if (/"error"/.test(text)) throw new Error(`${engine.name}: importing ${NODE_IMAGE} failed: ${text.trim()}`);
  return NODE_IMAGE;
}

const imported = new WeakMap<TestEngine, Promise<string>>();

/** The node image's name on `engine`, importing it the first time it is asked for there. */
export function nodeImage(engine: TestEngine): Promise<string> {
  let done = imported.get(engine);
  if (!done) {
    done = importImage(engine);
    imported.set(engine, done);
    done.catch(() => imported.delete(engine));
  }
  return done;
}
