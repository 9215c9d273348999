/** Structured logs (pino) with secrets redacted by key wherever they appear. */
import { pino, type Logger } from 'pino';

export type { Logger };

const REDACT = [
  'token', 'secret', 'password', 'authorization', 'privateKey', 'key',
  '*.token', '*.secret', '*.password', '*.authorization', '*.privateKey',
  'headers.authorization', 'req.headers.authorization', 'req.headers.cookie',
];

export function createLogger(name: string, level = process.env.DOCKFLEET_LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level, redact: { paths: REDACT, censor: '[redacted]' } }, pino.destination({ fd: 2, sync: false }));
}

/** A logger that drops everything, for in-process tests and benches. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
