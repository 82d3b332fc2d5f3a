// Runs ioredis and node-redis, each with its defaults, against the server
// at PUBSUB_ADDR ("host:port"), and exits non-zero on the first mismatch.
import assert from 'node:assert/strict';
import { createInterface } from 'node:readline';
import Redis from 'ioredis';
import { createClient } from 'redis';

// The test drops every client on the server when the script prints
// "drop", and answers "dropped".
const input = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function dropClients() {
  console.log('drop');
  const { value } = await input.next();
  assert.equal(value, 'dropped');
}

const [host, portText] = process.env.PUBSUB_ADDR.split(':');
const port = Number(portText);

async function waitFor(done, what) {
  const deadline = Date.now() + 10000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

// waitForAsync polls an async condition, retrying past the errors of a
// command sent while the client reconnects.
async function waitForAsync(done, what) {
  const deadline = Date.now() + 10000;
  for (;;) {
    try {
      if (await done()) return;
    } catch (err) {
      // a command caught by the drop: ask again
    }
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

  // ioredis reconnects by itself and subscribes again to all three.
  await dropClients();
  await waitFor(() => sub.status === 'ready', 'ioredis to reconnect');
  const back = async () => {
    const [numsub, numpat, shardnumsub] = await Promise.all([
      pub.pubsub('NUMSUB', 'news'), pub.pubsub('NUMPAT'), pub.pubsub('SHARDNUMSUB', 'orders')]);
    return numsub[1] === 1 && numpat === 1 && shardnumsub[1] === 1;
  };
  await waitForAsync(back, 'ioredis to subscribe again');
  got.length = 0;
  assert.equal(await pub.publish('news', 'after'), 1);
  assert.equal(await pub.publish('news.x', 'after'), 1);
  assert.equal(await pub.spublish('orders', 'after'), 1);
  await waitFor(() => got.length === 3, 'ioredis messages after the reconnection');
  assert.deepEqual(got.sort(), ['news after', 'news.* news.x after', 's orders after']);

  await sub.unsubscribe('news');
  await sub.punsubscribe('news.*');
  await sub.sunsubscribe('orders');
  assert.equal(await pub.publish('news', 'gone'), 0);
  sub.disconnect();
  pub.disconnect();
}

async function nodeRedis() {
  const pub = createClient({ url: `redis://${host}:${port}` });
  // A dropped connection is reported here while node-redis reconnects.
  const errors = [];
  pub.on('error', (err) => errors.push(err));
  await pub.connect();
  const sub = pub.duplicate();
  sub.on('error', (err) => errors.push(err));
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

  // node-redis reconnects by itself and subscribes again to all three.
  await dropClients();
  await waitForAsync(async () => {
    const [numsub, numpat, shardnumsub] = await Promise.all([
      pub.pubSubNumSub(['news']), pub.pubSubNumPat(), pub.pubSubShardNumSub(['orders'])]);
    return numsub.news === 1 && numpat === 1 && shardnumsub.orders === 1;
  }, 'node-redis to subscribe again');
  got.length = 0;
  assert.equal(await pub.publish('news', 'after'), 1);
  assert.equal(await pub.publish('news.x', 'after'), 1);
  assert.equal(await pub.sPublish('orders', 'after'), 1);
  await waitFor(() => got.length === 3, 'node-redis messages after the reconnection');
  assert.deepEqual(got.sort(), ['news after', 'p news.x after', 's orders after']);
  assert.ok(errors.length > 0, 'node-redis reported the dropped connections');

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
process.exit(0); // stdin stays open for the test's answers
