/**
 * Compose's scalar forms read the way Compose reads them: Go durations ("1m30s"), byte sizes
 * ("512m", go-units' RAMInBytes: binary multiples), CPU counts ("0.5"), and the list-or-map
 * forms of labels and environment. Each throws ValueError with a message for people.
 */
export class ValueError extends Error {}

const DURATION_UNITS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  µs: 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** A Go duration ("1h2m3.5s", "500ms") or a plain number of seconds, in nanoseconds. */
export function durationNs(value: unknown): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new ValueError(`${value} is not a duration`);
    return Math.round(value * 1e9);
  }
  const text = String(value).trim();
  if (text === '0') return 0;
  const part = /([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)/y;
  let total = 0;
  let at = 0;
  while (at < text.length) {
    part.lastIndex = at;
    const match = part.exec(text);
    if (match === null) throw new ValueError(`${JSON.stringify(text)} is not a duration (write e.g. "10s", "1m30s", "500ms")`);
    total += Number(match[1]) * (DURATION_UNITS[match[2] as string] as number);
    at = part.lastIndex;
  }
  if (text === '') throw new ValueError('an empty duration');
  return Math.round(total);
}

const BYTE_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };

/** "512m", "1gb", "1.5G", "1024" or a number: bytes, binary multiples as Docker reads them. */
export function byteSize(value: unknown): number {
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value <= 0) throw new ValueError(`${value} is not a size in bytes`);
    return value;
  }
  const match = /^([0-9]+(?:\.[0-9]+)?) ?([kmgtp]?)i?b?$/i.exec(String(value).trim());
  if (match === null) throw new ValueError(`${JSON.stringify(value)} is not a size (write e.g. "512m", "1g")`);
  const bytes = Math.floor(Number(match[1]) * (BYTE_UNITS[(match[2] as string).toLowerCase()] as number));
  if (bytes <= 0) throw new ValueError(`${JSON.stringify(value)} is not a positive size`);
  return bytes;
}

/** "0.5" or 0.5 CPUs → nano-CPUs, as the Engine API takes them. */
export function nanoCpus(value: unknown): number {
  const cpus = typeof value === 'number' ? value : Number(String(value).trim());
  if (!Number.isFinite(cpus) || cpus <= 0) throw new ValueError(`${JSON.stringify(value)} is not a number of CPUs`);
  return Math.round(cpus * 1e9);
}

/** A scalar as Compose turns it into a string (true → "true", 3 → "3", null → ""). */
export function scalarText(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw new ValueError('must be a string, number or boolean');
}

/** Labels, logging options, driver options: a map, or a list of "key=value". */
export function stringMap(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (value === null || value === undefined) return out;
  if (Array.isArray(value)) {
    for (const item of value) {
      const text = scalarText(item);
      const eq = text.indexOf('=');
      if (eq <= 0) {
        if (text === '') throw new ValueError('an empty entry');
        out[text] = '';
      } else {
        out[text.slice(0, eq)] = text.slice(eq + 1);
      }
    }
    return out;
  }
  for (const [key, item] of Object.entries(value as Record<string, unknown>)) out[key] = scalarText(item);
  return out;
}

/** A list of strings, or one string made a list. */
export function stringList(value: unknown): string[] {
  if (value === null || value === undefined) return [];
  if (Array.isArray(value)) return value.map(scalarText);
  return [scalarText(value)];
}
