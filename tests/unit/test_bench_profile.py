"""The benchmark's profile summary reads py-spy's raw format correctly (the profile itself needs
a running worker and py-spy: ``python bench/worker.py --only throughput --profile``)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_bench():
    sys.path.insert(0, str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location("bench_worker", ROOT / "bench" / "worker.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


LOOP = "run_forever (asyncio/base_events.py:607);_run (asyncio/events.py:80)"
RAW = "\n".join(
    [
        f"{LOOP};_run (stream/pipeline.py:186);Monitor.process (detectors/monitor.py:123);"
        "update_many (detectors/numeric.py:267) 30",
        f"{LOOP};_run (stream/pipeline.py:186);Monitor.process (detectors/monitor.py:125) 10",
        f"{LOOP};_run (stream/pipeline.py:186);EventDecoder.decode (schemas/decoder.py:153) 20",
        f"{LOOP};getmany (aiokafka/consumer/consumer.py:1197);"
        "AIOKafkaConsumer.getmany (aiokafka/consumer/consumer.py:1197) 10",
        # The connection's reader task: the Kafka client too, though not under getmany.
        f"{LOOP};AIOKafkaConnection._read (site-packages/aiokafka/conn.py:524) 5",
        f"{LOOP};select (lib/selectors.py:468) 25",
    ]
)


def share(text: str, name: str) -> float:
    match = re.search(rf"([\d.]+) %  {re.escape(name)}", text)
    assert match, text
    return float(match.group(1))


def test_shares_add_up_and_follow_the_stacks():
    text = load_bench().profile_summary(RAW)
    assert "100 samples" in text
    assert share(text, "monitoring core (detectors/)") == 40.0
    assert share(text, "decode and validate (schemas/)") == 20.0
    assert share(text, "Kafka client (aiokafka: socket reads, fetch parsing)") == 15.0
    assert share(text, "other") == 25.0


def test_functions_are_listed_below_the_event_loop_with_own_time():
    text = load_bench().profile_summary(RAW)
    listed = text.split("left out):")[1]
    assert "run_forever" not in listed  # on every stack
    # Monitor.process: 40 % with its callee, 10 % its own; lines of one function merged.
    assert re.search(r"40\.0 / 10\.0 %  Monitor\.process \(detectors/monitor\.py\)", listed)
    assert re.search(r"30\.0 / 30\.0 %  update_many \(detectors/numeric\.py\)", listed)


def test_an_empty_profile_says_so():
    assert "no samples" in load_bench().profile_summary("")
