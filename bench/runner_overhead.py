"""The local runner's Kafka trigger (librdkafka underneath) with a no-op handler, against
a bare kafka-python consumer and a bare confluent-kafka (librdkafka) consumer: what
the runner adds per message, and what the pure-Python client would cost.

All read the same N messages (`--size` bytes each: 16 KB is an image message with
its 64 px pixels inline) from one fresh topic, each with its own consumer group,
one after the other in this process; CPU seconds per message beside events/s.
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid

from kafka import KafkaAdminClient

from triptych.bus import consumer as make_consumer
from triptych.bus import producer as make_producer
from triptych.config import get_settings
from triptych.runtime.kafka_trigger import KafkaTriggerRunner
from triptych.runtime.nuclio_compat import LoadedHandler, make_context
from triptych.runtime.spec import KafkaTriggerSpec
from triptych.sdk import Delivery


def confluent_consumer(settings, topic: str, count: int) -> float:
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": settings.kafka_url, "group.id": f"bench-rd-{uuid.uuid4().hex[:6]}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    seen, started = 0, None
    while seen < count:
        messages = consumer.consume(num_messages=500, timeout=1.0)
        if messages and started is None:
            started = time.perf_counter()
        seen += sum(1 for m in messages if m.error() is None)
        if messages:
            consumer.commit(asynchronous=False)
    elapsed = time.perf_counter() - started
    consumer.close()
    return count / elapsed


def bare_consumer(settings, topic: str, count: int) -> float:
    consumer = make_consumer(settings, group_id=f"bench-bare-{uuid.uuid4().hex[:6]}", auto_offset_reset="earliest")
    consumer.subscribe([topic])
    seen, started = 0, None
    while seen < count:
        polled = consumer.poll(timeout_ms=1000)
        if polled and started is None:
            started = time.perf_counter()
        seen += sum(len(v) for v in polled.values())
        if polled:
            consumer.commit()
    elapsed = time.perf_counter() - started
    consumer.close()
    return count / elapsed


def runner(settings, topic: str, count: int, batch_size: int) -> float:
    seen = {"n": 0, "started": None}
    done = threading.Event()

    def noop(context, event_or_events):
        if seen["started"] is None:
            seen["started"] = time.perf_counter()
        seen["n"] += len(event_or_events) if isinstance(event_or_events, list) else 1
        if seen["n"] >= count:
            seen["ended"] = time.perf_counter()
            done.set()

    if batch_size > 1:
        setattr(noop, "triptych_takes_batches", True)
    trigger = KafkaTriggerSpec("bench", (topic,), f"bench-runner-{uuid.uuid4().hex[:6]}", "earliest",
                               Delivery(batch_size=batch_size, batch_wait_ms=50 if batch_size > 1 else 0))
    stop = threading.Event()
    run = KafkaTriggerRunner("bench", trigger, LoadedHandler(None, noop, None), settings, stop,
                             make_context("bench", 0, "init", "init"))
    thread = threading.Thread(target=run.run)
    thread.start()
    done.wait(600)
    stop.set()
    thread.join()
    return count / (seen["ended"] - seen["started"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--size", type=int, default=16_000, help="bytes per message")
    args = parser.parse_args()
    settings = get_settings()
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_url)
    admin.create_topics({topic: {"num_partitions": 1, "replication_factor": 1}}, wait_for_metadata=True)
    producer = make_producer(settings)
    for i in range(args.messages):
        producer.send(topic, key=str(i).encode(), value=(b'{"n": %d, "pad": "' % i).ljust(args.size - 2, b"x") + b'"}')
    producer.flush()
    producer.close()
    cpu = {}

    def timed(name, call):
        started = time.process_time()
        rate = call()
        cpu[name] = (time.process_time() - started) * 1000 / args.messages
        return rate

    bare = timed("bare", lambda: bare_consumer(settings, topic, args.messages))
    b1 = timed("b1", lambda: runner(settings, topic, args.messages, 1))
    b16 = timed("b16", lambda: runner(settings, topic, args.messages, 16))
    rd = timed("rd", lambda: confluent_consumer(settings, topic, args.messages))
    admin.delete_topics([topic])
    admin.close()
    print(f"{args.messages} messages of {args.size} bytes, one partition, no-op handler; CPU ms per message "
          f"(this process): kafka-python {cpu['bare']:.3f}, confluent-kafka {cpu['rd']:.3f}, "
          f"runner b1 {cpu['b1']:.3f}, runner b16 {cpu['b16']:.3f}")
    print(f"  bare kafka-python consumer (commit per poll): {bare:8.0f} events/s")
    print(f"  bare confluent-kafka consumer (librdkafka):   {rd:8.0f} events/s  ({rd / bare:.2f}x kafka-python)")
    print(f"  runner, batch 1 (commit per poll):            {b1:8.0f} events/s  ({b1 / rd:.2f}x bare librdkafka)")
    print(f"  runner, batch 16 (commit per poll):           {b16:8.0f} events/s  ({b16 / rd:.2f}x bare librdkafka, "
          f"{b16 / b1:.1f}x batch 1)")
    print(f"  runner overhead per event at batch 1: {1000 / b1 - 1000 / rd:.3f} ms over the bare librdkafka loop")


if __name__ == "__main__":
    main()
