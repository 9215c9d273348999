/**
 * The agent's side of a stats stream (GET STATS_PATH): the query names the containers (and
 * maybe the host) some page watches; while the hub keeps the response open, each tick's line
 * is written as NDJSON. A hub that reads slowly misses ticks (the newest line matters, not a
 * backlog), so nothing queues here. Closing the response is how the hub says "nobody looks".
 */
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { parseStatsQuery } from '../../protocol/stats.ts';
import type { StatsSampler } from './stats-sampler.ts';

export function createStatsStreamHandler(sampler: StatsSampler): (req: Http2ServerRequest, res: Http2ServerResponse) => void {
  return (req, res) => {
    const { ids, host } = parseStatsQuery(req.url.split('?')[1] ?? '');
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    let blocked = false;
    const unwatch = sampler.watch({
      ids,
      host,
      onLine(line) {
        if (blocked || res.closed || res.destroyed) return;
        if (!res.write(`${JSON.stringify(line)}\n`)) {
          blocked = true;
          res.once('drain', () => (blocked = false));
        }
      },
    });
    res.once('close', unwatch);
  };
}
