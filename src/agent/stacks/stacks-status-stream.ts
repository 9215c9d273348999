/**
 * The agent's answer on STACKS_STATUS_PATH: one `stacksStatusMessage` NDJSON line now, then one
 * each time a stack's state or drift changes. It coalesces like the inventory stream: while
 * the hub reads slowly only the newest report waits, as a mark, and is built when written.
 */
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { DriftWatcher } from './drift-watch.ts';
import { coalescedFeed } from '../coalesced-feed.ts';

export function createStacksStatusHandler(watcher: DriftWatcher): (req: Http2ServerRequest, res: Http2ServerResponse) => void {
  return coalescedFeed(watcher, () => watcher.status);
}
