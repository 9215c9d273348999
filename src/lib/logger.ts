/**
 * Structured logs (pino) with secrets redacted by key wherever they appear. Logs go to stderr:
 * JSON lines for machines, or — when stderr is a terminal, or `--log-format pretty` — short
 * coloured lines for people (pino-pretty). Redaction happens inside pino before either format
 * sees a record, so both print the same `[redacted]`.
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import { PinoPretty } from 'pino-pretty';
import { logSettingsFrom, type LogSettings } from './log-settings.ts';

export type { Logger };

const REDACT = [
  'token',
  'secret',
  'password',
  'authorization',
  'privateKey',
  'key',
  '*.token',
  '*.secret',
  '*.password',
  '*.authorization',
  '*.privateKey',
  'headers.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
];

/** Where log lines go: stderr unless a test hands its own stream (with `isTTY` to pose as a terminal). */
export interface LogOutput {
  stream: NodeJS.WritableStream & { isTTY?: boolean };
}

/**
 * Short human lines: `12:04:05.120 INFO  hub: agent connected {"node":"edge-1"}` — the time of
 * day, the level, the process and the message, then the record's own fields on the same line.
 * pid and hostname are left out (one process per terminal). Colour only on a terminal, and
 * never under NO_COLOR.
 */
function prettyStream(output: (NodeJS.WritableStream & { isTTY?: boolean }) | null): DestinationStream {
  const tty = output === null ? process.stderr.isTTY === true : output.isTTY === true;
  const noColor = process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '';
  return PinoPretty({
    destination: output ?? 2,
    sync: output === null,
    colorize: tty && !noColor,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,name',
    messageFormat: '{if name}{name}: {end}{msg}',
    singleLine: true,
  });
}

export function createLogger(name: string, settings: LogSettings = logSettingsFrom(), output?: LogOutput): Logger {
  const stream = output?.stream ?? null;
  const pretty = settings.format === 'pretty' || (settings.format === 'auto' && (stream === null ? process.stderr.isTTY === true : stream.isTTY === true));
  const destination = pretty ? prettyStream(stream) : (stream ?? pino.destination({ fd: 2, sync: false }));
  return pino({ name, level: settings.level, redact: { paths: REDACT, censor: '[redacted]' } }, destination);
}

/** A logger that drops everything, for in-process tests and benches. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
