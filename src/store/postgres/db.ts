/** The PostgreSQL connection every Postgres store shares: one pg.Pool, BIGINT read back as a JS
 * number (ms times and ids fit; a value past 2^53 throws rather than rounds), transactions on one
 * client, and errors that name the operation but never the password in the URL.
 * When the server cannot be reached (stopped, restarting, network gone) every call fails within
 * the connect timeout with `store_unavailable` (503, retryable) instead of hanging or crashing
 * the hub; the pool dials again on the next call, so the hub recovers without a restart.
 * So that reads go on meanwhile, the rows that say who a caller is (tokens, users, sessions,
 * client certificates, grants) are remembered as last read here and answered from memory while
 * the server is away; a write to one of those tables through this PgDb forgets that table's rows
 * at once, so a revocation made here is never undone by the outage. */
import pg from 'pg';
import { DockfleetError } from '../../protocol/errors.ts';

/** What a store needs to run SQL: the pool itself, or one transaction's client inside `tx`. */
export interface Queryable {
  query<R = Record<string, unknown>>(text: string, values?: unknown[]): Promise<{ rows: R[]; rowCount: number }>;
}

/** A failed query or connection, re-thrown with the operation named. `sqlState` is PostgreSQL's
 * five-character code (23505 unique violation, 23503 foreign key, 40001 serialization failure). */
export class PgError extends Error {
  readonly sqlState: string | undefined;
  readonly constraint: string | undefined;
  constructor(operation: string, cause: unknown, secret: string | undefined) {
    const raw = cause instanceof Error ? cause.message : String(cause);
    super(`postgres ${operation} failed: ${scrub(raw, secret)}`);
    this.name = 'PgError';
    // Only the server's errors carry a SQLSTATE; a socket error's `code` (ECONNREFUSED) is not one.
    const fromServer = cause instanceof pg.DatabaseError;
    this.sqlState = fromServer ? cause.code : undefined;
    this.constraint = fromServer ? cause.constraint : undefined;
  }
}

/** True for a unique or primary-key violation (SQLSTATE 23505), optionally of one named constraint. */
export function isUniqueViolation(err: unknown, constraint?: string): boolean {
  return err instanceof PgError && err.sqlState === '23505' && (constraint === undefined || err.constraint === constraint);
}

/** `postgres://user:secret@host/db` → `postgres://user:***@host/db`; also hides `password=` query
 * parameters. Anything that does not parse as a URL is replaced whole. */
export function redactUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return '(unparseable postgres url)';
  }
  if (parsed.password !== '') parsed.password = '***';
  for (const key of [...parsed.searchParams.keys()]) {
    if (/pass/i.test(key)) parsed.searchParams.set(key, '***');
  }
  return parsed.toString().replace('%2A%2A%2A', '***');
}

const INT8_OID = 20;
function parseInt8(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new Error(`BIGINT ${text} is past Number.MAX_SAFE_INTEGER`);
  return value;
}
const typeParsers = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID && format !== 'binary') return parseInt8;
    return pg.types.getTypeParser(oid, format);
  },
} as pg.CustomTypesConfig;

/** How long a call waits for a connection before it fails with store_unavailable. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

/** Server SQLSTATEs that mean "the server is going or gone", not "your statement is wrong":
 * class 08 (connection exception), admin/crash shutdown, cannot connect now (starting up). */
const UNAVAILABLE_STATES = /^(08...|57P01|57P02|57P03)$/;
/** Socket errors and pg's own words for a connection that failed, timed out or was cut. */
const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ENOENT']);
const UNAVAILABLE_MESSAGES = /Connection terminated|timeout exceeded when trying to connect|connection timeout|not queryable|Client was closed|server closed the connection/i;

/** True when `err` (from pg) says the server cannot be reached now, so a later call may succeed. */
export function isUnavailable(err: unknown): boolean {
  if (err instanceof pg.DatabaseError) return err.code !== undefined && UNAVAILABLE_STATES.test(err.code);
  if (!(err instanceof Error)) return false;
  const code = (err as NodeJS.ErrnoException).code;
  if (code !== undefined && UNAVAILABLE_CODES.has(code)) return true;
  if (err instanceof AggregateError) return err.errors.some(isUnavailable); // a host with several addresses
  return UNAVAILABLE_MESSAGES.test(err.message);
}

/** What a caller sees when the database is away: the operation and the redacted URL, never the password. */
function unavailable(operation: string, where: string, cause: unknown, secret: string | undefined): DockfleetError {
  return new DockfleetError('store_unavailable', `the hub's database (${where}) cannot be reached, so ${operation} was not done; changes are refused until it is back, reads from memory go on`, {
    cause: new PgError(operation, cause, secret),
  });
}

/** A query's or connection's failure, as the caller should see it. */
function failure(operation: string, where: string, err: unknown, secret: string | undefined): Error {
  return isUnavailable(err) ? unavailable(operation, where, err, secret) : new PgError(operation, err, secret);
}

/** Tables whose last-read rows answer while the server is away: the ones every call's authentication reads. */
const REMEMBERED_TABLES = new Set(['api_tokens', 'users', 'sessions', 'client_certs', 'node_grants']);
/** At most this many remembered answers (oldest forgotten first). */
const REMEMBERED_MAX = 5_000;

type Answer = { rows: unknown[]; rowCount: number };

/** The last answer to each authentication read, by statement and values. */
class Remembered {
  readonly #answers = new Map<string, { table: string; answer: Answer }>();

  recall(text: string, values: unknown[] | undefined): Answer | undefined {
    return this.#answers.get(keyOf(text, values))?.answer;
  }

  /** After a successful statement: keeps a read of a remembered table, forgets a table written to. */
  noteSuccess(text: string, values: unknown[] | undefined, answer: Answer): void {
    const [verb, table] = operationOf(text).split(' ');
    if (table === undefined || !REMEMBERED_TABLES.has(table)) return;
    if (verb !== 'SELECT') return this.forget(table);
    const key = keyOf(text, values);
    this.#answers.delete(key);
    this.#answers.set(key, { table, answer });
    if (this.#answers.size > REMEMBERED_MAX) this.#answers.delete(this.#answers.keys().next().value!);
  }

  /** Before a write: forgets what a write statement's table may change (whether or not it lands). */
  noteWrite(text: string): void {
    const [verb, table] = operationOf(text).split(' ');
    if (verb !== 'SELECT' && table !== undefined && REMEMBERED_TABLES.has(table)) this.forget(table);
  }

  forget(table: string): void {
    for (const [key, entry] of this.#answers) if (entry.table === table) this.#answers.delete(key);
  }
}

function keyOf(text: string, values: unknown[] | undefined): string {
  return `${text}\u0000${JSON.stringify(values ?? [])}`;
}

export class PgDb implements Queryable {
  readonly #pool: pg.Pool;
  readonly #secret: string | undefined;
  readonly #where: string;
  readonly #remembered = new Remembered();

  constructor(url: string, options: { max?: number; connectTimeoutMs?: number } = {}) {
    this.#secret = passwordOf(url);
    this.#where = redactUrl(url);
    this.#pool = new pg.Pool({
      connectionString: url,
      types: typeParsers,
      max: options.max ?? 10,
      // pg waits for a connection forever by default: with the server away every call would hang.
      connectionTimeoutMillis: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      // A server that vanished without closing its sockets (host down, cable pulled) is noticed.
      keepAlive: true,
    });
    // An idle client whose server went away emits here; without a listener Node would crash.
    // The next query on the pool fails with the cause, so nothing is lost by not acting on it.
    this.#pool.on('error', () => {});
  }

  /** The URL with its password hidden: what logs and errors may show. */
  get where(): string {
    return this.#where;
  }

  async query<R = Record<string, unknown>>(text: string, values?: unknown[]): Promise<{ rows: R[]; rowCount: number }> {
    this.#remembered.noteWrite(text);
    try {
      const result = await this.#pool.query(text, values);
      const answer = { rows: result.rows as R[], rowCount: result.rowCount ?? 0 };
      this.#remembered.noteSuccess(text, values, answer);
      return answer;
    } catch (err) {
      const known = isUnavailable(err) ? this.#remembered.recall(text, values) : undefined;
      if (known) return known as { rows: R[]; rowCount: number };
      throw failure(operationOf(text), this.#where, err, this.#secret);
    }
  }

  /** Runs `fn` between BEGIN and COMMIT on one client; ROLLBACK (and re-throw) if it throws. */
  async tx<T>(fn: (q: Queryable) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (err) {
      throw failure(`connect to ${this.#where}`, this.#where, err, this.#secret);
    }
    const secret = this.#secret;
    const where = this.#where;
    const remembered = this.#remembered;
    const written: string[] = [];
    // A client checked out of the pool has no 'error' listener of its own: a server that goes away
    // mid-transaction would crash the process without this one (the pending query fails anyway).
    let broken = false;
    const onError = (): void => {
      broken = true;
    };
    client.on('error', onError);
    const scoped: Queryable = {
      async query<R = Record<string, unknown>>(text: string, values?: unknown[]) {
        remembered.noteWrite(text); // inside a transaction reads are not remembered: they may see its own writes
        written.push(text);
        try {
          const result = await client.query(text, values);
          return { rows: result.rows as R[], rowCount: result.rowCount ?? 0 };
        } catch (err) {
          throw failure(operationOf(text), where, err, secret);
        }
      },
    };
    try {
      await scoped.query('BEGIN');
      const value = await fn(scoped);
      await scoped.query('COMMIT');
      // A read that raced the transaction may have remembered rows it changed: forget them again.
      for (const text of written) remembered.noteWrite(text);
      return value;
    } catch (err) {
      try {
        await client.query('ROLLBACK');
      } catch {
        broken = true; // the connection itself failed: do not hand it back to the pool
      }
      throw err;
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}

function passwordOf(url: string): string | undefined {
  try {
    const password = decodeURIComponent(new URL(url).password);
    return password === '' ? undefined : password;
  } catch {
    return undefined;
  }
}

/** The statement's verb and, where it is plain to read, its table: "INSERT INTO nodes". */
function operationOf(text: string): string {
  const words = text.trim().replace(/\s+/g, ' ').split(' ');
  const verb = (words[0] ?? 'query').toUpperCase();
  const lower = words.map((w) => w.toLowerCase());
  const after = (word: string): string | undefined => {
    const at = lower.indexOf(word);
    return at >= 0 ? words[at + 1]?.replace(/[^A-Za-z0-9_."]/g, '') : undefined;
  };
  const table = verb === 'INSERT' ? after('into') : verb === 'UPDATE' ? words[1] : verb === 'DELETE' || verb === 'SELECT' ? after('from') : undefined;
  return table ? `${verb} ${table}` : verb;
}

function scrub(message: string, secret: string | undefined): string {
  let out = message.replace(/postgres(ql)?:\/\/[^\s'"]+/gi, (m) => redactUrl(m));
  if (secret) out = out.split(secret).join('***');
  return out;
}
