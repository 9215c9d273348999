/**
 * A host rebuild that failed raises a condition naming the node and why (the step that failed
 * and its reason); a later rebuild of the node that is running or done clears it.
 */
import type { AlertSource, ConditionSink } from '../alerts/alert-source.ts';
import type { HostRebuilds } from './host-rebuilds.ts';
import type { RebuildRecord } from './rebuild-record.ts';

const KIND = 'host-rebuild';

export class RebuildAlertSource implements AlertSource {
  readonly kind = KIND;
  readonly #rebuilds: HostRebuilds;

  constructor(rebuilds: HostRebuilds) {
    this.#rebuilds = rebuilds;
  }

  start(sink: ConditionSink): () => void {
    const judge = (r: RebuildRecord): void => {
      const key = `${KIND}:${r.node}`;
      if (r.state !== 'failed') return sink.clear(key);
      sink.raise(KIND, {
        key,
        severity: 'critical',
        node: r.node,
        subject: r.node,
        title: `Rebuilding ${r.node} on its replacement host failed`,
        detail: (r.error ?? 'no reason recorded').slice(0, 2_000),
      });
    };
    for (const r of this.#rebuilds.list()) judge(r);
    this.#rebuilds.on('changed', judge);
    return () => this.#rebuilds.off('changed', judge);
  }
}
