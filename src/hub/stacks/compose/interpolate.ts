/**
 * Variable interpolation as Compose does it: `$VAR`, `${VAR}`, `${VAR:-default}`,
 * `${VAR-default}`, `${VAR:?err}`, `${VAR?err}`, `${VAR:+alt}`, `${VAR+alt}`, and `$$` for a
 * literal `$`; defaults may hold further variables. One difference, on purpose: a variable
 * that is not set and has no default is an error naming it (Compose warns and uses ""), so a
 * forgotten --env-file never deploys an empty password.
 *
 * Each result says which secret variables' values went into it, so the caller can keep those
 * values out of the project.
 */
export interface Variable {
  value: string;
  secret: boolean;
}
export type Variables = ReadonlyMap<string, Variable>;

export type Interpolated = { ok: true; value: string; secrets: string[] } | { ok: false; message: string };

const NAME_START = /[A-Za-z_]/;
const NAME_CHAR = /[A-Za-z0-9_]/;
const MAX_DEPTH = 10;

export function interpolate(text: string, vars: Variables): Interpolated {
  const secrets = new Set<string>();
  try {
    const value = expand(text, vars, secrets, 0);
    return { ok: true, value, secrets: [...secrets] };
  } catch (err) {
    if (err instanceof InterpolationError) return { ok: false, message: err.message };
    throw err;
  }
}

class InterpolationError extends Error {}

function expand(text: string, vars: Variables, secrets: Set<string>, depth: number): string {
  if (depth > MAX_DEPTH) throw new InterpolationError('variables nested too deeply');
  let out = '';
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (ch !== '$') {
      out += ch;
      i += 1;
      continue;
    }
    const next = text[i + 1];
    if (next === '$') {
      out += '$';
      i += 2;
    } else if (next !== undefined && NAME_START.test(next)) {
      let end = i + 2;
      while (end < text.length && NAME_CHAR.test(text[end] as string)) end += 1;
      out += substitute(text.slice(i + 1, end), null, '', vars, secrets, depth);
      i = end;
    } else if (next === '{') {
      const close = matchingBrace(text, i + 2);
      out += braced(text.slice(i + 2, close), vars, secrets, depth);
      i = close + 1;
    } else {
      throw new InterpolationError(`invalid interpolation at ${JSON.stringify(text.slice(i, i + 10))}: write $$ for a literal $`);
    }
  }
  return out;
}

function matchingBrace(text: string, from: number): number {
  let depth = 1;
  for (let i = from; i < text.length; i += 1) {
    if (text[i] === '$' && text[i + 1] === '$') {
      i += 1;
    } else if (text[i] === '$' && text[i + 1] === '{') {
      depth += 1;
      i += 1;
    } else if (text[i] === '}') {
      depth -= 1;
      if (depth === 0) return i;
    }
  }
  throw new InterpolationError(`unclosed \${ in ${JSON.stringify(text.slice(Math.max(0, from - 2), from + 30))}`);
}

const OPERATORS = [':-', ':?', ':+', '-', '?', '+'] as const;
type Operator = (typeof OPERATORS)[number];

function braced(inner: string, vars: Variables, secrets: Set<string>, depth: number): string {
  let end = 0;
  while (end < inner.length && NAME_CHAR.test(inner[end] as string)) end += 1;
  const name = inner.slice(0, end);
  if (name === '' || !NAME_START.test(name[0] as string)) {
    throw new InterpolationError(`invalid variable name in \${${inner}}`);
  }
  const rest = inner.slice(end);
  if (rest === '') return substitute(name, null, '', vars, secrets, depth);
  const operator = OPERATORS.find((op) => rest.startsWith(op));
  if (operator === undefined) throw new InterpolationError(`invalid interpolation \${${inner}}`);
  return substitute(name, operator, rest.slice(operator.length), vars, secrets, depth);
}

function substitute(name: string, operator: Operator | null, arg: string, vars: Variables, secrets: Set<string>, depth: number): string {
  const found = vars.get(name);
  const set = found !== undefined;
  const nonEmpty = set && found.value !== '';
  const use = (): string => {
    if (found === undefined) throw new InterpolationError(`variable ${name} is not set`);
    if (found.secret) secrets.add(name);
    return found.value;
  };
  const sub = (): string => expand(arg, vars, secrets, depth + 1);
  switch (operator) {
    case null:
      if (!set) throw new InterpolationError(`variable ${name} is not set: give it in --env-file or --secret-env-file, or write \${${name}:-default}`);
      return use();
    case ':-':
      return nonEmpty ? use() : sub();
    case '-':
      return set ? use() : sub();
    case ':?':
      if (nonEmpty) return use();
      throw new InterpolationError(`variable ${name} is required: ${sub() || 'it is not set or empty'}`);
    case '?':
      if (set) return use();
      throw new InterpolationError(`variable ${name} is required: ${sub() || 'it is not set'}`);
    case ':+':
      return nonEmpty ? sub() : '';
    case '+':
      return set ? sub() : '';
  }
}
