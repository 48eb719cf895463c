"""The bare batched relay the pipeline is measured against (PERFORMANCE.md's limit):
getmany → send every record on → await all acks → commit. No parsing, no decisions.

`python -m sharinghub.tools.bench.relay BOOTSTRAP IN_TOPIC OUT_TOPIC GROUP`
"""

from __future__ import annotations

import asyncio
import signal
import sys

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from sharinghub.runtime import event_loop
from sharinghub.runtime.settings import Settings


async def relay(bootstrap: str, source: str, sink: str, group: str) -> None:
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=10,
        session_timeout_ms=6000,
        heartbeat_interval_ms=2000,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=False,
        linger_ms=1,
        max_batch_size=1 << 20,
        acks="all",
    )
    await consumer.start()
    await producer.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=20, max_records=500)
            futures = [
                await producer.send(sink, rec.value, key=rec.key, headers=list(rec.headers))
                for records in batches.values()
                for rec in records
            ]
            if futures:
                await asyncio.gather(*futures)
                await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()


if __name__ == "__main__":
    # the loop the hub it is compared with runs on (the same environment)
    event_loop.run(relay(*sys.argv[1:5]), Settings().event_loop)
