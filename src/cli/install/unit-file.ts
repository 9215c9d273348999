/**
 * A systemd unit as data, and its text. Every directive carries the reason it is there, written
 * into the unit as a comment above it, so whoever reads /etc/systemd/system/dockfleet-*.service
 * sees why each line is in it (and what breaks if they take it out).
 */

export interface Directive {
  key: string;
  value: string;
  /** Why this line is here: printed as `# why` above it. */
  why: string;
}

export interface UnitFile {
  /** Opening comment lines (what wrote the unit, how to remove it). */
  header: string[];
  unit: Directive[];
  service: Directive[];
  install: Directive[];
}

function section(name: string, directives: Directive[]): string {
  const lines = [`[${name}]`];
  for (const d of directives) {
    for (const line of d.why.split('\n')) lines.push(`# ${line}`);
    lines.push(`${d.key}=${d.value}`);
  }
  return lines.join('\n');
}

export function renderUnit(unit: UnitFile): string {
  return `${[unit.header.map((l) => `# ${l}`).join('\n'), section('Unit', unit.unit), section('Service', unit.service), section('Install', unit.install)].join('\n\n')}\n`;
}

/**
 * One word of a command line as systemd reads it (systemd.service(5), "Command lines"): plain
 * when it is plain, else double-quoted with `\` and `"` escaped. `$` and `%` are doubled either
 * way, so a path or URL holding one is never read as a variable or a specifier.
 */
export function execWord(word: string): string {
  const escaped = word.replace(/\$/g, '$$$$').replace(/%/g, '%%');
  if (/^[A-Za-z0-9_@%+=:,./$-]+$/.test(escaped)) return escaped;
  return `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

export function execLine(argv: readonly string[]): string {
  return argv.map(execWord).join(' ');
}
