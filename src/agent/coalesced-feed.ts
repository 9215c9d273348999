/**
 * An NDJSON feed the hub follows on one stream (stack status, volume backup reports): one line
 * now, then one each time `source` says 'change'. It coalesces: while the hub reads slowly only
 * a mark waits, and the line is built from the newest state when it can be written.
 */
import type { EventEmitter } from 'node:events';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';

export function coalescedFeed(source: Pick<EventEmitter, 'on' | 'off'>, current: () => unknown): (req: Http2ServerRequest, res: Http2ServerResponse) => void {
  return (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    let dirty = true;
    let waiting = false;
    const flush = (): void => {
      waiting = false;
      if (!dirty || res.closed || res.destroyed) return;
      dirty = false;
      if (!res.write(`${JSON.stringify(current())}\n`)) {
        waiting = true;
        res.once('drain', flush);
      }
    };
    const onChange = (): void => {
      dirty = true;
      if (!waiting) flush();
    };
    source.on('change', onChange);
    res.once('close', () => {
      source.off('change', onChange);
      res.off('drain', flush);
    });
    flush();
  };
}
