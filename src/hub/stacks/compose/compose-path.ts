/**
 * A place in a Compose file: the keys and indexes from its root, and the form people read
 * (`services.web.ports[0]`, `services.web.labels["traefik.enable"]`).
 */
export type ComposePath = ReadonlyArray<string | number>;

/** One thing wrong with a Compose file, where it is. `line` is 1-based, null when unknown. */
export interface ComposeError {
  path: string;
  line: number | null;
  message: string;
}

/** A problem found before its line is known: the YAML source fills the line in. */
export interface ComposeProblem {
  path: ComposePath;
  message: string;
}

const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;

export function formatPath(path: ComposePath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (PLAIN_KEY.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

export function problem(path: ComposePath, message: string): ComposeProblem {
  return { path, message };
}
