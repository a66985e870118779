"""The consumer half of the Redis floor benchmark: `python -m bench.floor URL KEY N BATCH`.

Says it is ready on KEY:ready, pops N messages from KEY (BRPOP one at a time, or
RPOP BATCH at a time), then pushes a marker to KEY:done so the producer can stop its clock.
"""

import sys

import redis


def consume(url: str, key: str, count: int, batch: int) -> None:
    client = redis.Redis.from_url(url)
    client.lpush(f"{key}:ready", 1)
    received = 0
    while received < count:
        if batch <= 1:
            if client.brpop([key], timeout=30) is None:
                raise TimeoutError(f"no message on {key} for 30s")
            received += 1
            continue
        items = client.rpop(key, batch)
        if items:
            received += len(items)
        elif client.brpop([key], timeout=30) is not None:
            received += 1
        else:
            raise TimeoutError(f"no message on {key} for 30s")
    client.lpush(f"{key}:done", received)


if __name__ == "__main__":
    url, key, count, batch = sys.argv[1:5]
    consume(url, key, int(count), int(batch))
