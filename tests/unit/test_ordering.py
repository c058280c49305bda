"""TimestampMerge: the input topics of one partition number applied in timestamp order."""

from __future__ import annotations

import random
from collections import namedtuple

import pytest

from stream.ordering import TimestampMerge

Record = namedtuple("Record", "topic partition offset timestamp")
TOPICS = ("predictions", "inputs", "labels")


def records(topic: str, stamps: list[int], partition: int = 0, first: int = 0) -> list[Record]:
    return [Record(topic, partition, first + i, ts) for i, ts in enumerate(stamps)]


def offsets(released: dict, topic: str, partition: int = 0) -> list[int]:
    return [r.offset for r in released.get((topic, partition), [])]


def merge(**kwargs) -> TimestampMerge:
    return TimestampMerge(TOPICS, **{"max_held": 1000, "max_wait": 5.0, **kwargs})


def test_a_label_waits_for_older_predictions_of_a_lagging_partition():
    m = merge()
    m.add(("labels", 0), records("labels", [150, 300, 450]))
    m.add(("predictions", 0), records("predictions", [100, 200]))
    released = m.release(caught_up={("inputs", 0)}, now=0.0)
    # predictions may have more records up to 300 in Kafka: only the label at 150 may go
    assert offsets(released, "predictions") == [0, 1]
    assert offsets(released, "labels") == [0]
    assert m.held == 2
    # the next fetch brings predictions up to 400
    m.add(("predictions", 0), records("predictions", [320, 400], first=2))
    released = m.release(caught_up={("inputs", 0)}, now=0.1)
    assert offsets(released, "predictions") == [2, 3]
    assert offsets(released, "labels") == [1]
    # the predictions partition is caught up: the last label goes
    released = m.release(caught_up={("inputs", 0), ("predictions", 0)}, now=0.2)
    assert offsets(released, "labels") == [2]
    assert m.held == 0
    assert m.forced == 0


def test_a_quiet_partition_holds_nothing_back():
    m = merge()
    m.add(("predictions", 0), records("predictions", [100, 200, 300]))
    released = m.release(caught_up={("inputs", 0), ("labels", 0)}, now=0.0)
    assert offsets(released, "predictions") == [0, 1, 2]
    assert m.waiting_on() == []


def test_a_partition_never_fetched_holds_until_max_wait_then_records_are_forced():
    m = merge(max_wait=5.0)
    m.add(("predictions", 0), records("predictions", [100, 200]))
    assert sorted(m.waiting_on()) == [("inputs", 0), ("labels", 0)]
    assert m.release(caught_up={("inputs", 0)}, now=10.0) == {}  # labels: unknown
    assert m.release(caught_up={("inputs", 0)}, now=14.9) == {}
    released = m.release(caught_up={("inputs", 0)}, now=15.0)
    assert offsets(released, "predictions") == [0, 1]
    assert m.forced == 2
    assert m.forced_partitions == [0]
    assert m.release(caught_up={("inputs", 0)}, now=16.0) == {}
    assert m.forced_partitions == []


def test_progress_restarts_the_wait():
    m = merge(max_wait=5.0)
    m.add(("labels", 0), records("labels", [500, 600]))
    m.add(("predictions", 0), records("predictions", [100]))
    caught = {("inputs", 0)}
    assert offsets(m.release(caught, now=0.0), "predictions") == [0]
    # predictions keep coming, each fetch a little further: no label is forced early
    for k in range(1, 5):
        m.add(("predictions", 0), records("predictions", [100 + 90 * k], first=k))
        released = m.release(caught, now=4.0 * k)
        assert offsets(released, "predictions") == [k]
        assert offsets(released, "labels") == []
    assert m.forced == 0
    # then nothing for max_wait: the labels go anyway
    assert m.release(caught, now=16.0 + 4.9) == {}
    assert offsets(m.release(caught, now=21.0), "labels") == [0, 1]
    assert m.forced == 2


def test_max_wait_zero_switches_ordering_off():
    m = merge(max_wait=0.0)
    m.add(("labels", 0), records("labels", [500]))
    assert offsets(m.release(caught_up=set(), now=0.0), "labels") == [0]
    assert m.forced == 1


def test_a_record_stamped_later_holds_back_the_ones_behind_it():
    """Each partition is released in offset order (its commits depend on it)."""
    m = merge()
    m.add(("labels", 0), records("labels", [100, 900, 200]))
    m.add(("predictions", 0), records("predictions", [300]))
    released = m.release(caught_up={("inputs", 0)}, now=0.0)
    assert offsets(released, "labels") == [0]  # 200 waits behind 900
    assert offsets(released, "predictions") == [0]


def test_partition_numbers_are_independent():
    m = merge()
    m.add(("labels", 0), records("labels", [500], partition=0))
    m.add(("labels", 1), records("labels", [500], partition=1))
    released = m.release(caught_up={("inputs", 0), ("inputs", 1), ("predictions", 1)}, now=0.0)
    assert offsets(released, "labels", partition=1) == [0]
    assert offsets(released, "labels", partition=0) == []


def test_a_full_partition_is_not_fetched_until_records_are_released():
    m = merge(max_held=3)
    m.add(("labels", 0), records("labels", [500, 600, 700]))
    assert m.is_full(("labels", 0))
    assert m.any_full
    m.add(("predictions", 0), records("predictions", [650]))
    m.release(caught_up={("inputs", 0)}, now=0.0)
    assert not m.is_full(("labels", 0))  # 500 and 600 went


def test_dropped_partitions_are_forgotten():
    m = merge()
    m.add(("labels", 0), records("labels", [500]))
    m.add(("labels", 1), records("labels", [500], partition=1))
    m.drop([0])
    assert m.held == 1
    assert all(tp[1] == 1 for tp in m.waiting_on())


@pytest.mark.parametrize("seed", range(40))
def test_every_record_goes_after_all_older_records_of_the_other_topics(seed):
    """Random topic contents (timestamps increasing per partition, as a producer's clock),
    fetched in random chunks and orders: no record is released before an older record of
    another topic that was already in Kafka, and everything is released exactly once."""
    rng = random.Random(seed)
    log = {}
    for topic in TOPICS:
        n = rng.choice([0, 5, 50, 200])
        stamps = sorted(rng.randrange(10_000) for _ in range(n))
        log[(topic, 0)] = records(topic, stamps)
    fetched = dict.fromkeys(log, 0)  # next offset a consumer would return
    m = merge(max_held=rng.choice([5, 20, 1000]))
    released_at: dict[tuple[str, int], int] = {}
    step = 0
    while any(fetched[tp] < len(log[tp]) for tp in log) or m.held:
        step += 1
        for tp in rng.sample(sorted(log), k=rng.randint(0, len(log))):
            if m.is_full(tp):
                continue
            chunk = log[tp][fetched[tp] : fetched[tp] + rng.randint(1, 40)]
            fetched[tp] += len(chunk)
            m.add(tp, chunk)
        caught = {tp for tp in m.waiting_on() if fetched[tp] == len(log[tp])}
        for tp, out in m.release(caught, now=step / 1000).items():
            for record in out:
                released_at[(tp[0], record.offset)] = step
        assert step < 10_000
    assert m.forced == 0
    assert len(released_at) == sum(len(v) for v in log.values())
    for tp, mine in log.items():
        for record in mine:
            step = released_at[(tp[0], record.offset)]
            for other, theirs in log.items():
                for older in theirs:
                    if older.timestamp < record.timestamp:
                        assert released_at[(other[0], older.offset)] <= step
