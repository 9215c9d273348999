/**
 * How a long-running process logs: its level and its format, from `--log-level` / `--log-format`,
 * else DOCKFLEET_LOG_LEVEL / DOCKFLEET_LOG_FORMAT, else info and auto (pretty lines on a terminal,
 * JSON lines otherwise). Read once when the command starts; a bad value fails at once.
 */

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
export const LOG_FORMATS = ['json', 'pretty'] as const;

export type LogLevel = (typeof LOG_LEVELS)[number];
/** `auto`: pretty when the log stream is a terminal, JSON lines when it is not. */
export type LogFormat = (typeof LOG_FORMATS)[number] | 'auto';

export interface LogSettings {
  readonly level: LogLevel;
  readonly format: LogFormat;
}

/** The two flags, for a command's `parseArgs` options. */
export const LOG_FLAG_OPTIONS = {
  'log-level': { type: 'string' },
  'log-format': { type: 'string' },
} as const;

/** The two flags as every long-running command's --help shows them. */
export const LOG_FLAGS_HELP = `  --log-level LEVEL   trace|debug|info|warn|error|fatal (default info; DOCKFLEET_LOG_LEVEL)
  --log-format FORMAT json|pretty: logs go to stderr as short coloured lines when it is a terminal,
                      as JSON lines otherwise; this forces one (DOCKFLEET_LOG_FORMAT)`;

/**
 * A bad log setting is a usage mistake. It carries Node's own code for an invalid option value
 * (what `util.parseArgs` throws), which the CLI already answers with exit status 2 and a pointer
 * to --help — without src/lib reaching up into src/cli for its error class.
 */
export class LogSettingError extends Error {
  readonly code = 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE';
  constructor(message: string) {
    super(message);
    this.name = 'LogSettingError';
  }
}

function oneOf<T extends string>(allowed: readonly T[], value: string, what: string): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new LogSettingError(`${what} must be one of ${allowed.join('|')}, got "${value}"`);
}

export interface LogFlags {
  'log-level'?: string | undefined;
  'log-format'?: string | undefined;
}

export function logSettingsFrom(flags: LogFlags = {}, env: NodeJS.ProcessEnv = process.env): LogSettings {
  const level =
    flags['log-level'] !== undefined
      ? oneOf(LOG_LEVELS, flags['log-level'], '--log-level')
      : env.DOCKFLEET_LOG_LEVEL !== undefined && env.DOCKFLEET_LOG_LEVEL !== ''
        ? oneOf(LOG_LEVELS, env.DOCKFLEET_LOG_LEVEL, 'DOCKFLEET_LOG_LEVEL')
        : 'info';
  const format =
    flags['log-format'] !== undefined
      ? oneOf(LOG_FORMATS, flags['log-format'], '--log-format')
      : env.DOCKFLEET_LOG_FORMAT !== undefined && env.DOCKFLEET_LOG_FORMAT !== ''
        ? oneOf(LOG_FORMATS, env.DOCKFLEET_LOG_FORMAT, 'DOCKFLEET_LOG_FORMAT')
        : 'auto';
  return Object.freeze({ level, format });
}
