// The Docker API section a metric label names: a small fixed set, never a path or an id.
// Run: CI=true node --import tsx --test test/metrics-section.test.ts
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DOCKER_SECTIONS, dockerSection } from '../src/hub/metrics/docker-section.ts';

test('engine paths map to their section, with or without an API version', () => {
  assert.equal(dockerSection('/v1.43/containers/3f2a9c0e1b7d/json?size=1'), 'containers');
  assert.equal(dockerSection('/containers/json'), 'containers');
  assert.equal(dockerSection('/v1.41/images/create?fromImage=nginx'), 'images');
  assert.equal(dockerSection('/build?t=app'), 'images');
  assert.equal(dockerSection('/volumes'), 'volumes');
  assert.equal(dockerSection('/v1.43/networks/bridge'), 'networks');
  assert.equal(dockerSection('/exec/abc/start'), 'exec');
  for (const p of ['/_ping', '/v1.43/info', '/version', '/events?since=1', '/system/df']) assert.equal(dockerSection(p), 'system', p);
});

test('anything else is other, so no label value comes from the caller', () => {
  for (const p of ['/', '', '/swarm/init', '/plugins', '/secret-path-3f2a9c0e', '/v1.43', '/containersx/json']) {
    const s = dockerSection(p);
    assert.ok((DOCKER_SECTIONS as readonly string[]).includes(s), p);
    assert.equal(s, 'other', p);
  }
});
