/** The hub's write-behind of inventory: a section the store could not take (disk full, busy)
 * is written again later, so a hub restart does not bring back an older view. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InventoryCache } from '../src/hub/inventory-cache.ts';
import { silentLogger } from '../src/lib/logger.ts';
import type { Store } from '../src/store/store.ts';

test('a section the store refused once is saved on a later flush', async () => {
  const saved: Array<[string, string, number]> = [];
  let failures = 1;
  const store = {
    async saveInventory(nodeId: string, section: string, items: unknown[]) {
      if (failures-- > 0) throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
      saved.push([nodeId, section, items.length]);
    },
    async loadInventory() {
      return [];
    },
  } as unknown as Store;
  const cache = new InventoryCache(store, silentLogger());
  cache.setSection('n1', 'images', [{ Id: 'a' }, { Id: 'b' }], 1);
  await cache.flush();
  assert.deepEqual(saved, [], 'the first write failed');
  await cache.flush();
  assert.deepEqual(saved, [['n1', 'images', 2]]);
  await cache.flush();
  assert.equal(saved.length, 1, 'written once it succeeded, not again');
});
