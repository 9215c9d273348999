/**
 * JSON for bodies the policy inspects, parsed so that what the policy sees is what the engine
 * will act on. The engine decodes with Go's encoding/json, which matches object keys to fields
 * case-insensitively (with Unicode folding: "ſ" is "s", "K" is "k") and lets a repeated key
 * overwrite or merge into the earlier one, while JSON.parse keeps only the last spelling. So
 * any object holding two keys that fold to the same name is refused, as is anything after the
 * first value (Go's decoder would ignore it) and nesting deeper than `maxDepth`.
 */
export type StrictJson = { ok: true; value: unknown } | { ok: false; error: string };

/** Go's field-name folding, reduced to what matters for ASCII field names. */
export function foldKey(key: string): string {
  return key.toLowerCase().replace(/ſ/g, 's');
}

class StrictJsonError extends Error {}

const STRING = /"(?:[^"\\\u0000-\u001f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"/y;
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const SPACE = /[ \t\n\r]*/y;

class Parser {
  readonly #text: string;
  readonly #maxDepth: number;
  #at = 0;

  constructor(text: string, maxDepth: number) {
    this.#text = text;
    this.#maxDepth = maxDepth;
  }

  document(): unknown {
    const value = this.#value(0);
    this.#space();
    if (this.#at !== this.#text.length) this.#fail('unexpected data after the JSON value');
    return value;
  }

  #fail(what: string): never {
    throw new StrictJsonError(`${what} at offset ${this.#at}`);
  }

  #space(): void {
    SPACE.lastIndex = this.#at;
    SPACE.test(this.#text);
    this.#at = SPACE.lastIndex;
  }

  #token(re: RegExp): string | null {
    re.lastIndex = this.#at;
    const m = re.exec(this.#text);
    if (!m) return null;
    this.#at = re.lastIndex;
    return m[0];
  }

  #value(depth: number): unknown {
    this.#space();
    const c = this.#text[this.#at];
    if (c === '{' || c === '[') {
      if (depth >= this.#maxDepth) this.#fail(`nesting deeper than ${this.#maxDepth}`);
      return c === '{' ? this.#object(depth + 1) : this.#array(depth + 1);
    }
    if (c === '"') return this.#string();
    for (const [word, value] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const) {
      if (this.#text.startsWith(word, this.#at)) {
        this.#at += word.length;
        return value;
      }
    }
    const num = this.#token(NUMBER);
    if (num === null) this.#fail('unexpected character');
    return Number(num);
  }

  #string(): string {
    const raw = this.#token(STRING);
    if (raw === null) this.#fail('malformed string');
    try {
      return JSON.parse(raw) as string;
    } catch {
      return this.#fail('malformed string');
    }
  }

  #object(depth: number): Record<string, unknown> {
    this.#at++;
    const obj: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
    const seen = new Set<string>();
    this.#space();
    if (this.#text[this.#at] === '}') {
      this.#at++;
      return obj;
    }
    for (;;) {
      this.#space();
      if (this.#text[this.#at] !== '"') this.#fail('expected a key');
      const key = this.#string();
      const folded = foldKey(key);
      if (seen.has(folded)) this.#fail(`duplicate key ${JSON.stringify(key)}`);
      seen.add(folded);
      this.#space();
      if (this.#text[this.#at] !== ':') this.#fail('expected ":"');
      this.#at++;
      obj[key] = this.#value(depth);
      this.#space();
      const next = this.#text[this.#at++];
      if (next === '}') return obj;
      if (next !== ',') this.#fail('expected "," or "}"');
    }
  }

  #array(depth: number): unknown[] {
    this.#at++;
    const items: unknown[] = [];
    this.#space();
    if (this.#text[this.#at] === ']') {
      this.#at++;
      return items;
    }
    for (;;) {
      items.push(this.#value(depth));
      this.#space();
      const next = this.#text[this.#at++];
      if (next === ']') return items;
      if (next !== ',') this.#fail('expected "," or "]"');
    }
  }
}

export function parseStrictJson(text: string, maxDepth = 64): StrictJson {
  try {
    return { ok: true, value: new Parser(text, maxDepth).document() };
  } catch (err) {
    if (err instanceof StrictJsonError) return { ok: false, error: err.message };
    throw err;
  }
}
