// The online mode's cache of POST /resolve answers, with a clock the test sets.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { TtlCache } from '../lib/cache.js';

test('answers are kept for the TTL, at most maxEntries of them, oldest evicted first', async () => {
  let now = 0;
  let loads = 0;
  const cache = new TtlCache({ maxEntries: 2, ttlMs: 5_000, now: () => now });
  const load = (value) => async () => { loads += 1; return value; };
  assert.equal(await cache.get('a', load('A')), 'A');
  assert.equal(await cache.get('a', load('other')), 'A', 'cached');
  now += 4_999;
  assert.equal(await cache.get('a', load('other')), 'A', 'still within the TTL');
  now += 1;
  assert.equal(await cache.get('a', load('A2')), 'A2', 'expired at the TTL');
  await cache.get('b', load('B'));
  await cache.get('c', load('C'));
  assert.equal(cache.size, 2, 'bounded');
  assert.equal(await cache.get('a', load('A3')), 'A3', 'the oldest entry was evicted');
  assert.equal(loads, 5);
});

test('a shorter lifetime per answer (a client_id that expires sooner) is honoured', async () => {
  let now = 0;
  const cache = new TtlCache({ maxEntries: 10, ttlMs: 5_000, now: () => now });
  await cache.get('x', async () => 'soon', () => 1_000);
  now += 1_000;
  assert.equal(await cache.get('x', async () => 'reloaded', () => 1_000), 'reloaded');
  await cache.get('gone', async () => 'expired', () => -1);
  assert.equal(cache.size, 1, 'an answer already past its lifetime is not kept');
});

test('failures are not cached, and concurrent lookups share one load', async () => {
  const cache = new TtlCache({ maxEntries: 10, ttlMs: 5_000 });
  await assert.rejects(cache.get('k', async () => { throw new Error('registrar down'); }));
  assert.equal(await cache.get('k', async () => 'up'), 'up', 'tried again after a failure');
  let loads = 0;
  const slow = () => new Promise((resolve) => { loads += 1; setTimeout(() => resolve('v'), 20); });
  const values = await Promise.all([cache.get('s', slow), cache.get('s', slow), cache.get('s', slow)]);
  assert.deepEqual(values, ['v', 'v', 'v']);
  assert.equal(loads, 1);
});
