// Runs ioredis and node-redis, each with its defaults, against the server
// at PUBSUB_ADDR ("host:port"), and exits non-zero on the first mismatch.
import assert from 'node:assert/strict';
import Redis from 'ioredis';
import { createClient } from 'redis';

const [host, portText] = process.env.PUBSUB_ADDR.split(':');
const port = Number(portText);

async function waitFor(done, what) {
  const deadline = Date.now() + 10000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

async function ioredis() {
  const sub = new Redis({ host, port });
  const pub = new Redis({ host, port });
  const got = [];
  sub.on('message', (channel, message) => got.push(`${channel} ${message}`));
  sub.on('pmessage', (pattern, channel, message) => got.push(`${pattern} ${channel} ${message}`));
  sub.on('smessage', (channel, message) => got.push(`s ${channel} ${message}`));
  assert.equal(await sub.subscribe('news'), 1);
  assert.equal(await sub.psubscribe('news.*'), 2);
  assert.equal(await sub.ssubscribe('orders'), 1);
  for (const payload of ['1', '2', '3']) assert.equal(await pub.publish('news', payload), 1);
  assert.equal(await pub.publish('news.sport', '4'), 1);
  assert.equal(await pub.spublish('orders', '5'), 1);
  await waitFor(() => got.length === 5, 'ioredis messages');
  assert.deepEqual(got, ['news 1', 'news 2', 'news 3', 'news.* news.sport 4', 's orders 5']);
  assert.deepEqual(await pub.pubsub('NUMSUB', 'news', 'none'), ['news', 1, 'none', 0]);
  assert.equal(await pub.pubsub('NUMPAT'), 1);
  assert.deepEqual(await pub.pubsub('SHARDNUMSUB', 'orders'), ['orders', 1]);
  await sub.unsubscribe('news');
  await sub.punsubscribe('news.*');
  await sub.sunsubscribe('orders');
  assert.equal(await pub.publish('news', 'gone'), 0);
  sub.disconnect();
  pub.disconnect();
}

async function nodeRedis() {
  const pub = createClient({ url: `redis://${host}:${port}` });
  pub.on('error', (err) => { throw err; });
  await pub.connect();
  const sub = pub.duplicate();
  await sub.connect();
  const got = [];
  await sub.subscribe('news', (message, channel) => got.push(`${channel} ${message}`));
  await sub.pSubscribe('news.*', (message, channel) => got.push(`p ${channel} ${message}`));
  await sub.sSubscribe('orders', (message, channel) => got.push(`s ${channel} ${message}`));
  for (const payload of ['1', '2', '3']) assert.equal(await pub.publish('news', payload), 1);
  assert.equal(await pub.publish('news.sport', '4'), 1);
  assert.equal(await pub.sPublish('orders', '5'), 1);
  await waitFor(() => got.length === 5, 'node-redis messages');
  assert.deepEqual(got, ['news 1', 'news 2', 'news 3', 'p news.sport 4', 's orders 5']);
  assert.deepEqual(await pub.pubSubNumSub(['news', 'none']), { news: 1, none: 0 });
  assert.equal(await pub.pubSubNumPat(), 1);
  assert.deepEqual(await pub.pubSubShardNumSub(['orders']), { orders: 1 });
  await sub.unsubscribe('news');
  await sub.pUnsubscribe('news.*');
  await sub.sUnsubscribe('orders');
  assert.equal(await pub.publish('news', 'gone'), 0);
  await sub.quit();
  await pub.quit();
}

await ioredis();
console.log('ioredis ok');
await nodeRedis();
console.log('node-redis ok');
