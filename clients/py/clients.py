"""Runs redis-py, with its defaults, against the server at PUBSUB_ADDR
("host:port"); exits non-zero on the first mismatch. Debian's python3-redis
(4.3.4) has no shard-channel helpers, so those go through execute_command."""
import os
import time

import redis

host, port = os.environ["PUBSUB_ADDR"].rsplit(":", 1)
r = redis.Redis(host=host, port=int(port))
p = r.pubsub()


def next_message(timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = p.get_message(timeout=0.05)
        if m is not None:
            return m
    raise AssertionError("no message within %ss" % timeout)


p.subscribe("news")
assert next_message() == {"type": "subscribe", "pattern": None, "channel": b"news", "data": 1}
p.psubscribe("news.*")
assert next_message() == {"type": "psubscribe", "pattern": None, "channel": b"news.*", "data": 2}
for payload in ("1", "2", "3"):
    assert r.publish("news", payload) == 1
assert r.publish("news.sport", "4") == 1
for payload in (b"1", b"2", b"3"):
    m = next_message()
    assert m["type"] == "message" and m["channel"] == b"news" and m["data"] == payload, m
m = next_message()
assert m == {"type": "pmessage", "pattern": b"news.*", "channel": b"news.sport", "data": b"4"}, m
assert r.pubsub_numsub("news", "none") == [(b"news", 1), (b"none", 0)]
assert r.pubsub_numpat() == 1
assert r.pubsub_channels() == [b"news"]

shard = r.pubsub()
shard.execute_command("SSUBSCRIBE", "orders")
deadline = time.time() + 10
while r.execute_command("PUBSUB", "SHARDNUMSUB", "orders") != [b"orders", 1]:
    assert time.time() < deadline, "SSUBSCRIBE not live"
    time.sleep(0.001)
assert r.execute_command("SPUBLISH", "orders", "5") == 1

p.unsubscribe("news")
assert next_message() == {"type": "unsubscribe", "pattern": None, "channel": b"news", "data": 1}
p.punsubscribe("news.*")
assert next_message() == {"type": "punsubscribe", "pattern": None, "channel": b"news.*", "data": 0}
assert r.publish("news", "gone") == 0
p.close()
shard.close()
print("redis-py ok")
