/** Compares the hub's four inventory sections of a node with what its engine lists itself,
 * and makes inventory quickly: tiny images imported from a one-file tar, labelled objects. */
import { engineRequest, type TestEngine } from './engines.ts';
import type { TestHub } from './hub-fixture.ts';

export type Sections = Record<'containers' | 'images' | 'volumes' | 'networks', string[]>;

/** A tar holding one small file, so each import is quick and (with its label) its own image. */
export function oneFileTar(name: string, content: string): Buffer {
  const data = Buffer.from(content);
  const header = Buffer.alloc(512);
  const field = (offset: number, length: number, value: string): void => void header.write(value, offset, length, 'ascii');
  field(0, 100, name);
  field(100, 8, '0000644\0');
  field(108, 8, '0000000\0');
  field(116, 8, '0000000\0');
  field(124, 12, `${data.length.toString(8).padStart(11, '0')}\0`);
  field(
    136,
    12,
    `${Math.floor(Date.now() / 1000)
      .toString(8)
      .padStart(11, '0')}\0`,
  );
  field(148, 8, '        ');
  field(156, 1, '0');
  field(257, 8, 'ustar\u000000');
  let sum = 0;
  for (const byte of header) sum += byte;
  field(148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  const padded = Buffer.alloc(Math.ceil(data.length / 512) * 512);
  data.copy(padded);
  return Buffer.concat([header, padded, Buffer.alloc(1024)]);
}

/** Imports a tiny image REPO:TAG (with LABELs), like `docker import`; returns nothing, throws on failure. */
export async function importTinyImage(engine: TestEngine, repo: string, tag: string, labels: Record<string, string> = {}): Promise<void> {
  const changes = Object.entries(labels)
    .map(([k, v]) => `&changes=${encodeURIComponent(`LABEL ${k}="${v}"`)}`)
    .join('');
  const tar = oneFileTar(`${repo.replace(/\W/g, '-')}-${tag}.txt`, `${repo}:${tag}\n`);
  const res = await engineRequest(engine.socketPath, 'POST', `/images/create?fromSrc=-&repo=${encodeURIComponent(repo)}&tag=${encodeURIComponent(tag)}${changes}`, tar, { timeoutMs: 60_000 });
  if (res.status !== 200 || /"error"/.test(res.text)) throw new Error(`import ${repo}:${tag} failed (${res.status}): ${res.text.trim().slice(0, 300)}`);
}

function normalise(section: keyof Sections, items: unknown[]): string[] {
  const rows = (items as Array<Record<string, any>>).map((i) => {
    if (section === 'containers') return `${i.Id} ${i.State} ${(i.Names ?? []).join(',')}`;
    if (section === 'images') return `${i.Id} ${[...(i.RepoTags ?? [])].sort().join(',')}`;
    if (section === 'volumes') return String(i.Name);
    return `${i.Id} ${i.Name}`;
  });
  return rows.sort();
}

export async function engineSections(engine: TestEngine): Promise<Sections> {
  const get = async (path: string): Promise<any> => {
    const res = await engineRequest(engine.socketPath, 'GET', path);
    if (res.status !== 200) throw new Error(`engine ${path}: ${res.status}`);
    return res.json;
  };
  const [containers, images, volumes, networks] = await Promise.all([get('/containers/json?all=1'), get('/images/json'), get('/volumes'), get('/networks')]);
  return {
    containers: normalise('containers', containers),
    images: normalise('images', images),
    volumes: normalise('volumes', volumes.Volumes ?? []),
    networks: normalise('networks', networks),
  };
}

export async function hubSections(hub: TestHub, node: string): Promise<Sections> {
  const out = {} as Sections;
  for (const section of ['containers', 'images', 'volumes', 'networks'] as const) {
    const res = await hub.api('GET', `/api/v1/nodes/${node}/${section}`);
    if (res.status !== 200) throw new Error(`hub ${section}: ${res.status} ${JSON.stringify(res.json).slice(0, 200)}`);
    out[section] = normalise(section, res.json);
  }
  return out;
}

/** What differs between two views, section by section (empty when they are equal). */
export function describeDifference(hub: Sections, engine: Sections): string {
  const lines: string[] = [];
  for (const section of ['containers', 'images', 'volumes', 'networks'] as const) {
    const h = new Set(hub[section]);
    const e = new Set(engine[section]);
    const missing = [...e].filter((x) => !h.has(x));
    const extra = [...h].filter((x) => !e.has(x));
    if (missing.length || extra.length) {
      lines.push(`${section}: hub ${h.size} vs engine ${e.size}; missing in hub ${missing.slice(0, 3).join(' | ')}; only in hub ${extra.slice(0, 3).join(' | ')}`);
    }
  }
  return lines.join('\n');
}

/** Waits until the hub's four sections of NODE equal the engine's; returns how long it took. */
export async function waitSectionsEqual(hub: TestHub, node: string, engine: TestEngine, timeoutMs: number): Promise<number> {
  const started = Date.now();
  let difference = '';
  for (;;) {
    const [e, h] = await Promise.all([engineSections(engine), hubSections(hub, node)]);
    difference = describeDifference(h, e);
    if (difference === '') {
      // Equal now; equal again a moment later rules out catching the engine mid-change.
      const [e2, h2] = await Promise.all([engineSections(engine), hubSections(hub, node)]);
      if (describeDifference(h2, e2) === '') return Date.now() - started;
    }
    if (Date.now() - started > timeoutMs) throw new Error(`the hub's view of ${node} still differs from the engine's after ${timeoutMs} ms:\n${difference}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
