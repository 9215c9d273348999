/** A bench knob from the environment: a non-negative number (an integer when asked), or
 * `fallback` when unset. */
export function envInt(name: string, fallback: number, opts: { integer?: boolean } = {}): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  const ok = opts.integer ? Number.isInteger(n) : Number.isFinite(n);
  if (!ok || n < 0) throw new Error(`${name} must be a non-negative ${opts.integer ? 'integer' : 'number'}, got ${v}`);
  return n;
}
