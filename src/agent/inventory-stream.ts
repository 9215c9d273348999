/**
 * The agent's half of the inventory stream: NDJSON messages on one long-lived HTTP/2 response,
 * one per engine state change and one per section change. It coalesces: while the hub reads
 * slowly, only the newest version of each section waits (as a mark, not a copy), so memory
 * stays bounded however fast the engine changes. Nothing is dropped under backpressure: a
 * section stays marked until its newest version has been handed to the stream, and on
 * 'drain' the newest version of every section still marked is written.
 * When the hub asks (HOST_USAGE_QUERY), the host's use is reported every HOST_USAGE_REPORT_MS,
 * coalesced the same way (only the newest report waits).
 */
import type { Http2ServerResponse } from 'node:http2';
import { HOST_USAGE_QUERY, type HostUsageMessage, type InventoryMessage, type InventorySection } from '../protocol/inventory.ts';
import type { PolicySummary } from '../protocol/policy-summary.ts';
import type { InventoryWatcher } from './inventory-watcher.ts';
import type { HostAuditLog } from './audit/host-audit.ts';
import { HOST_USAGE_REPORT_MS, HostUsageReport } from './host-usage-report.ts';

/** `policy`, when given, is the first line of every stream: the hub shows what this host allows.
 * `audit`, when given: its head is sent at the start and after each entry (newest only, coalesced). */
export function streamInventory(watcher: InventoryWatcher, res: Http2ServerResponse, policy?: PolicySummary, audit?: HostAuditLog): void {
  res.writeHead(200, { 'content-type': 'application/x-ndjson' });
  /** Sections whose newest version this stream has not written yet. */
  const dirty = new Set<InventorySection>();
  let engineDirty = true;
  let waiting = false;
  let policyDue = policy !== undefined;
  let auditDue = audit !== undefined;
  let usageDue: HostUsageMessage | null = null;

  /** The next message to write, taken off the marks at the moment it is built (so it is the newest). */
  const next = (): InventoryMessage | null => {
    if (policyDue && policy) {
      policyDue = false;
      return { t: 'policy', summary: policy };
    }
    if (auditDue && audit) {
      auditDue = false;
      return { t: 'auditHead', ...audit.head() };
    }
    if (usageDue) {
      const usage = usageDue;
      usageDue = null;
      return usage;
    }
    if (engineDirty) {
      engineDirty = false;
      const status = watcher.status;
      return status.state === 'up' ? { t: 'engine', state: 'up', facts: status.facts } : { t: 'engine', state: 'down', error: status.error.slice(0, 500) };
    }
    for (const section of dirty) {
      dirty.delete(section);
      const current = watcher.section(section);
      if (current) return { t: 'section', section, items: current.items as Array<Record<string, unknown>>, at: current.at };
    }
    return null;
  };

  const flush = (): void => {
    waiting = false;
    while (!res.closed && !res.destroyed) {
      const message = next();
      if (!message) return;
      // A false return means the line is queued, not lost: wait for the queue to empty before
      // writing more, and leave the other sections marked until then.
      if (!res.write(`${JSON.stringify(message)}\n`)) {
        waiting = true;
        res.once('drain', flush);
        return;
      }
    }
  };
  const onSection = (section: InventorySection): void => {
    dirty.add(section);
    if (!waiting) flush();
  };
  const onEngine = (): void => {
    engineDirty = true;
    if (!waiting) flush();
  };
  for (const [section] of watcher.snapshot()) dirty.add(section);
  watcher.on('section', onSection);
  watcher.on('engine', onEngine);
  const stopAudit = audit?.onAppend(() => {
    auditDue = true;
    if (!waiting) flush();
  });
  const usageAsked = res.req.url.split('?')[1]?.split('&').includes(HOST_USAGE_QUERY) === true;
  const usageTimer = usageAsked ? reportHostUsage() : null;
  res.once('close', () => {
    if (usageTimer) clearInterval(usageTimer);
    stopAudit?.();
    watcher.off('section', onSection);
    watcher.off('engine', onEngine);
    res.off('drain', flush);
  });
  flush();

  function reportHostUsage(): NodeJS.Timeout {
    const report = new HostUsageReport();
    const started = report.start();
    const timer = setInterval(() => {
      void started
        .then(() => report.next())
        .then((usage) => {
          if (res.closed || res.destroyed) return;
          usageDue = usage;
          if (!waiting) flush();
        })
        .catch(() => {}); // never thrown today (each reading has a fallback); a missed report is harmless
    }, HOST_USAGE_REPORT_MS);
    timer.unref();
    return timer;
  }
}
