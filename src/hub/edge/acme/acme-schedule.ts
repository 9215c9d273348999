/**
 * When the ACME manager acts, as pure functions: a host wants a certificate when it has none or
 * when less than `renewFraction` of its certificate's lifetime is left (a third by default, so
 * a 90-day certificate renews with 30 days to go); a failed order is retried after a delay that
 * doubles from `retryFirstMs` up to `retryMaxMs`.
 */
import type { AcmeCertificateRecord } from '../certs/certificate-book.ts';

export interface AcmeTuning {
  /** Renew when less than this fraction of a certificate's lifetime is left (0 < f ≤ 1). */
  renewFraction: number;
  /** How often stored certificates are looked at for renewal. */
  checkEveryMs: number;
  /** The first retry after a failed order; each further failure doubles it, up to retryMaxMs. */
  retryFirstMs: number;
  retryMaxMs: number;
  /** Orders in flight at once (one per host at most). */
  maxConcurrent: number;
  /** How long one order may take, validation and issuance included. */
  orderDeadlineMs: number;
}

export const ACME_TUNING_DEFAULTS: AcmeTuning = Object.freeze({
  renewFraction: 1 / 3,
  checkEveryMs: 60 * 60_000,
  retryFirstMs: 60_000,
  retryMaxMs: 6 * 60 * 60_000,
  maxConcurrent: 2,
  orderDeadlineMs: 5 * 60_000,
});

export function tuningFrom(partial: Partial<AcmeTuning> = {}): AcmeTuning {
  const t = { ...ACME_TUNING_DEFAULTS, ...partial };
  if (!(t.renewFraction > 0 && t.renewFraction <= 1)) throw new Error(`ACME renewFraction must be in (0, 1], not ${t.renewFraction}`);
  for (const k of ['checkEveryMs', 'retryFirstMs', 'retryMaxMs', 'maxConcurrent', 'orderDeadlineMs'] as const) {
    if (!(Number.isFinite(t[k]) && t[k] > 0)) throw new Error(`ACME ${k} must be a positive number, not ${t[k]}`);
  }
  return Object.freeze(t);
}

/** True when HOST needs an order now: no certificate, or too little of its lifetime left. */
export function needsOrder(record: AcmeCertificateRecord | null, now: number, renewFraction: number): boolean {
  if (record === null) return true;
  const notBefore = record.notBefore.getTime();
  const notAfter = record.notAfter.getTime();
  const lifetime = Math.max(notAfter - notBefore, 0);
  return notAfter - now < lifetime * renewFraction;
}

/** The wait before the next try after FAILURES failed orders in a row (1, 2, …). */
export function retryDelayMs(failures: number, tuning: Pick<AcmeTuning, 'retryFirstMs' | 'retryMaxMs'>): number {
  const doublings = Math.min(Math.max(failures - 1, 0), 30);
  return Math.min(tuning.retryFirstMs * 2 ** doublings, tuning.retryMaxMs);
}
