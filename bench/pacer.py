"""Open short TCP connections at a constant rate: one HTTP/1.0 GET each, the server closes.

    pacer.py HOST PORT RATE_PER_SECOND SECONDS

Runs inside the lab's client namespace. Prints a JSON line with what it did: the number
started, completed and failed, and the mean connection duration (connect to close).
"""
import asyncio
import json
import sys
import time

REQUEST = b"GET / HTTP/1.0\r\nHost: lab\r\n\r\n"


async def one(host, port, stats):
    start = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
        writer.write(REQUEST)
        await asyncio.wait_for(reader.read(), 5)  # until the server closes
        writer.close()
        stats["completed"] += 1
        stats["duration_sum"] += time.monotonic() - start
    except (OSError, asyncio.TimeoutError):
        stats["failed"] += 1


async def main(host, port, rate, seconds):
    stats = {"started": 0, "completed": 0, "failed": 0, "duration_sum": 0.0}
    interval = 1.0 / rate
    start = time.monotonic()
    tasks = set()
    n = 0
    while True:
        due = start + n * interval
        if due - start >= seconds:
            break
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.ensure_future(one(host, port, stats))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        stats["started"] += 1
        n += 1
    elapsed = time.monotonic() - start
    if tasks:
        await asyncio.wait(tasks, timeout=10)
    stats["elapsed_seconds"] = round(elapsed, 3)
    stats["achieved_rate_per_second"] = round(stats["started"] / elapsed, 2) if elapsed else 0
    stats["mean_duration_seconds"] = (round(stats["duration_sum"] / stats["completed"], 5)
                                      if stats["completed"] else None)
    del stats["duration_sum"]
    print(json.dumps(stats))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])))
