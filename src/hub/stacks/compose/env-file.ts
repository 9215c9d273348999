/**
 * The contents of an `env_file` read as Compose reads them: KEY=VALUE lines, `export ` allowed,
 * `#` comments, 'single quotes' taken literally, "double quotes" with \n \t \" \\ escapes,
 * and variables interpolated outside single quotes. A bare KEY takes its value from the
 * deploy's variables, like a bare name under `environment`.
 */
import { ValueError } from './compose-values.ts';

export interface EnvFileEntry {
  key: string;
  /** null: a bare KEY. */
  value: string | null;
  /** false for a 'single-quoted' value. */
  interpolate: boolean;
  line: number;
}

const KEY = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

export function parseEnvFile(text: string): EnvFileEntry[] {
  const entries: EnvFileEntry[] = [];
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  lines.forEach((raw, index) => {
    const line = index + 1;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const body = trimmed.startsWith('export ') ? trimmed.slice(7).trimStart() : trimmed;
    const eq = body.indexOf('=');
    const key = (eq < 0 ? body : body.slice(0, eq)).trim();
    if (!KEY.test(key)) throw new ValueError(`line ${line}: ${JSON.stringify(key)} is not a variable name`);
    if (eq < 0) {
      entries.push({ key, value: null, interpolate: true, line });
      return;
    }
    entries.push({ key, line, ...readValue(body.slice(eq + 1).trim(), line) });
  });
  return entries;
}

function readValue(text: string, line: number): { value: string; interpolate: boolean } {
  const quote = text[0];
  if (quote === "'" || quote === '"') {
    const close = findClose(text, quote);
    if (close < 0) throw new ValueError(`line ${line}: unclosed ${quote} (values spanning lines are not supported)`);
    const after = text.slice(close + 1).trim();
    if (after !== '' && !after.startsWith('#')) throw new ValueError(`line ${line}: text after the closing ${quote}`);
    const inner = text.slice(1, close);
    if (quote === "'") return { value: inner, interpolate: false };
    return { value: inner.replace(/\\([nrt"\\$])/g, (_, ch: string) => ({ n: '\n', r: '\r', t: '\t' })[ch] ?? (ch === '$' ? '$$' : ch)), interpolate: true };
  }
  const comment = text.search(/\s#/);
  return { value: (comment < 0 ? text : text.slice(0, comment)).trimEnd(), interpolate: true };
}

function findClose(text: string, quote: string): number {
  for (let i = 1; i < text.length; i += 1) {
    if (quote === '"' && text[i] === '\\') i += 1;
    else if (text[i] === quote) return i;
  }
  return -1;
}
