/**
 * The agent's answer on STACKS_STATUS_PATH: one `stacksStatusMessage` NDJSON line now, then one
 * each time a stack's state or drift changes. It coalesces like the inventory stream: while
 * the hub reads slowly only the newest report waits, as a mark, and is built when written.
 */
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { DriftWatcher } from './drift-watch.ts';

export function createStacksStatusHandler(watcher: DriftWatcher): (req: Http2ServerRequest, res: Http2ServerResponse) => void {
  return (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    let dirty = true;
    let waiting = false;
    const flush = (): void => {
      waiting = false;
      if (!dirty || res.closed || res.destroyed) return;
      dirty = false;
      if (!res.write(`${JSON.stringify(watcher.status)}\n`)) {
        waiting = true;
        res.once('drain', flush);
      }
    };
    const onChange = (): void => {
      dirty = true;
      if (!waiting) flush();
    };
    watcher.on('change', onChange);
    res.once('close', () => {
      watcher.off('change', onChange);
      res.off('drain', flush);
    });
    flush();
  };
}
