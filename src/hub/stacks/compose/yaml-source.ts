/**
 * The Compose file's text read as YAML with every node's position kept, so each error names
 * its line. Duplicate keys are refused, anchors and merge keys (`<<: *x`) resolved, and a file
 * too large or an alias bomb refused before it costs memory.
 */
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Document, Node } from 'yaml';
import type { ComposeError, ComposePath } from './compose-path.ts';
import { formatPath } from './compose-path.ts';

export const MAX_COMPOSE_BYTES = 1024 * 1024;
/** More aliases than this in one file is an alias bomb, not a Compose file. */
export const MAX_ALIAS_COUNT = 200;

export type YamlReadResult = { ok: true; source: YamlSource; value: unknown } | { ok: false; errors: ComposeError[] };

export class YamlSource {
  readonly #doc: Document;
  readonly #lines: LineCounter;

  private constructor(doc: Document, lines: LineCounter) {
    this.#doc = doc;
    this.#lines = lines;
  }

  static read(text: string): YamlReadResult {
    if (Buffer.byteLength(text, 'utf8') > MAX_COMPOSE_BYTES) {
      return { ok: false, errors: [{ path: '', line: null, message: `the Compose file is larger than ${MAX_COMPOSE_BYTES} bytes` }] };
    }
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, merge: true, uniqueKeys: true, prettyErrors: true });
    // Warnings count too: an unresolved tag (Compose's own `!reset`, `!override`) would
    // otherwise be read as its plain value, silently changing what the file says.
    const problems = [...doc.errors, ...doc.warnings];
    if (problems.length > 0) {
      return {
        ok: false,
        errors: problems.map((err) => ({
          path: '',
          line: err.linePos?.[0].line ?? lines.linePos(err.pos[0]).line,
          message:
            err.code === 'DUPLICATE_KEY'
              ? `duplicate key ${JSON.stringify(keyAt(text, err.pos[0]))}: each key may appear once in a mapping`
              : err.code === 'TAG_RESOLVE_FAILED'
                ? `${firstLine(err.message).replace(/ at line.*$/, '')}: YAML tags such as !reset and !override are not supported`
                : `invalid YAML: ${firstLine(err.message)}`,
        })),
      };
    }
    const source = new YamlSource(doc as Document, lines);
    try {
      const value: unknown = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
      return { ok: true, source, value };
    } catch (err) {
      const message = err instanceof Error ? firstLine(err.message) : 'unreadable YAML';
      return { ok: false, errors: [{ path: '', line: null, message: `invalid YAML: ${message}` }] };
    }
  }

  /** The 1-based line of the node at `path` (a key's own line for a mapping entry), or of the
   * deepest node on the way there when the path goes further than the file (a missing key). */
  lineOf(path: ComposePath): number | null {
    let node: unknown = this.#doc.contents;
    let offset: number | null = rangeStart(node);
    for (const seg of path) {
      const next = this.#child(node, seg);
      if (next === null) break;
      node = next.value;
      offset = next.offset ?? offset;
    }
    return offset === null ? null : this.#lines.linePos(offset).line;
  }

  error(path: ComposePath, message: string): ComposeError {
    return { path: formatPath(path), line: this.lineOf(path), message };
  }

  #resolve(node: unknown): unknown {
    let current = node;
    for (let hops = 0; isAlias(current) && hops < MAX_ALIAS_COUNT; hops += 1) current = current.resolve(this.#doc);
    return current;
  }

  #child(parent: unknown, seg: string | number): { value: unknown; offset: number | null } | null {
    const node = this.#resolve(parent);
    if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg];
      return item === undefined ? null : { value: item, offset: rangeStart(item) };
    }
    if (!isMap(node)) return null;
    const merged: unknown[] = [];
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? pair.key.value : pair.key;
      if (typeof key === 'symbol') {
        const sources = this.#resolve(pair.value);
        if (isSeq(sources)) merged.push(...sources.items);
        else merged.push(sources);
        continue;
      }
      if (String(key) === String(seg)) return { value: pair.value, offset: rangeStart(pair.key) ?? rangeStart(pair.value) };
    }
    for (const source of merged) {
      const found = this.#child(source, seg);
      if (found !== null) return found;
    }
    return null;
  }
}

function rangeStart(node: unknown): number | null {
  const range = (node as Node | null)?.range;
  return Array.isArray(range) ? range[0] : null;
}

function firstLine(message: string): string {
  return (message.split('\n')[0] ?? message).replace(/:$/, '');
}

function keyAt(text: string, offset: number): string {
  const match = /^["']?([^"':\n]*)/.exec(text.slice(offset, offset + 200));
  return (match?.[1] ?? '').trim();
}
