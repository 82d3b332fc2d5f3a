"""Runs redis-py, with its defaults, against the server at PUBSUB_ADDR
("host:port"); exits non-zero on the first mismatch. Debian's python3-redis
(4.3.4) has no shard-channel helpers, so those go through execute_command."""
import os
import sys
import time

import redis

host, port = os.environ["PUBSUB_ADDR"].rsplit(":", 1)
r = redis.Redis(host=host, port=int(port))
p = r.pubsub()


def next_message(timeout=10, pubsub=None):
    """The next message, as a redis-py reader loop gets it: a dropped
    connection raises ConnectionError, and the next call connects again
    and subscribes again to what subscribe() and psubscribe() named.
    get_message returns nothing on a PubSub that subscribed only through
    execute_command (4.3.4 tracks no shard channels), so that one is read
    with parse_response, as its users must."""
    pubsub = pubsub or p
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if pubsub.subscribed:
                m = pubsub.get_message(timeout=0.05)
            else:
                response = pubsub.parse_response(block=False, timeout=0.05)
                m = response and pubsub.handle_message(response)
        except redis.ConnectionError:
            continue
        if m:
            return m
    raise AssertionError("no message within %ss" % timeout)


def wait_until(what, done):
    deadline = time.time() + 10
    while not done():
        assert time.time() < deadline, what
        time.sleep(0.001)


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
wait_until("SSUBSCRIBE not live", lambda: r.execute_command("PUBSUB", "SHARDNUMSUB", "orders") == [b"orders", 1])
assert r.execute_command("SPUBLISH", "orders", "5") == 1
m = next_message(pubsub=shard)
assert m["type"] == "ssubscribe" and m["channel"] == b"orders", m
m = next_message(pubsub=shard)
assert m["type"] == "smessage" and m["channel"] == b"orders" and m["data"] == b"5", m

# The server drops every client: the reader loop reconnects, redis-py
# subscribes again to the channel and the pattern; 4.3.4 does not know
# shard channels, so its user subscribes again to that one.
print("drop", flush=True)
assert sys.stdin.readline() == "dropped\n"
m = next_message()
assert m["type"] in ("subscribe", "psubscribe"), m
m = next_message()
assert m["type"] in ("subscribe", "psubscribe"), m
wait_until("channel back", lambda: r.pubsub_numsub("news") == [(b"news", 1)])
assert r.publish("news", "after") == 1
m = next_message()
assert m["type"] == "message" and m["data"] == b"after", m
try:
    shard.parse_response(block=False, timeout=0.05)
except redis.ConnectionError:
    pass  # the drop, seen: the next command connects again
shard.execute_command("SSUBSCRIBE", "orders")
assert next_message(pubsub=shard)["type"] == "ssubscribe"
assert r.execute_command("SPUBLISH", "orders", "after") == 1
m = next_message(pubsub=shard)
assert m["type"] == "smessage" and m["data"] == b"after", m

p.unsubscribe("news")
assert next_message() == {"type": "unsubscribe", "pattern": None, "channel": b"news", "data": 1}
p.punsubscribe("news.*")
assert next_message() == {"type": "punsubscribe", "pattern": None, "channel": b"news.*", "data": 0}
assert r.publish("news", "gone") == 0
p.close()
shard.close()
print("redis-py ok")
