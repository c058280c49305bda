"""LabelJoiner: every label joins, waits, or is counted exactly once, in bounded memory."""

from __future__ import annotations

import heapq
import random

import orjson
import pytest

from detectors.base import StateError
from detectors.config import JoinConfig
from detectors.join import OUTCOMES, LabelJoiner, Outcome

TTL = 1_000
LABEL_WAIT = 200


def joiner(**overrides) -> LabelJoiner:
    return LabelJoiner(JoinConfig(**{"ttl": TTL, "label_wait": LABEL_WAIT, **overrides}))


def only(counts: dict[str, int], **expected: int) -> bool:
    """True when ``counts`` has exactly the ``expected`` non-zero outcomes."""
    return {k: v for k, v in counts.items() if v} == expected


def test_a_label_joins_its_waiting_prediction():
    j = joiner()
    assert j.add_prediction("p1", 100, "v2", "cat") is None
    assert j.pending == 1
    outcome = j.add_label("p1", "dog", 350)
    assert outcome == Outcome(
        version="v2", prediction="cat", label="dog", predicted_at=100, labelled_at=350
    )
    assert j.pending == 0
    assert only(j.counts, joined=1)


def test_a_label_before_its_prediction_waits_and_joins_once_the_prediction_comes():
    j = joiner()
    assert j.add_label("p1", True, 50) is None
    assert j.pending_labels == 1
    assert only(j.counts)  # nothing decided yet
    outcome = j.add_prediction("p1", 60, "v1", False)
    assert outcome == Outcome("v1", False, True, predicted_at=60, labelled_at=50)
    assert j.pending == 0
    assert j.pending_labels == 0
    j.expire(10 * TTL)  # nothing left to expire: the join is not counted again
    assert only(j.counts, joined=1)


def test_a_prediction_waits_within_ttl_and_a_label_after_ttl_is_late():
    j = joiner()
    j.add_prediction("p1", 0, "v1", 1)
    j.add_prediction("p2", 0, "v1", 1)
    j.expire(TTL // 2)
    assert j.pending == 2
    assert j.add_label("p1", 1, TTL // 2) is not None
    j.expire(3 * TTL)
    assert j.pending == 0
    assert j.add_label("p2", 1, 3 * TTL) is None
    assert only(j.counts, joined=1, expired=1, late=1)


def test_a_second_label_for_a_joined_prediction_is_a_duplicate():
    j = joiner()
    j.add_prediction("p1", 0, "v1", 1)
    assert j.add_label("p1", 1, 10) is not None
    assert j.add_label("p1", 0, 20) is None
    assert j.add_label("p1", 1, 30) is None
    j.expire(10 * TTL)
    assert only(j.counts, joined=1, duplicate=2)


def test_a_label_nobody_claims_within_label_wait_is_an_unknown_id():
    j = joiner()
    j.add_label("ghost", 1, 0)
    j.expire(LABEL_WAIT // 2)
    assert j.pending_labels == 1
    assert only(j.counts)
    j.expire(3 * LABEL_WAIT)
    assert j.pending_labels == 0
    assert only(j.counts, unknown_id=1)
    # The prediction arriving after the label gave up waits on its own and joins nothing.
    assert j.add_prediction("ghost", 3 * LABEL_WAIT, "v1", 1) is None
    assert j.pending == 1


def test_max_pending_evicts_the_oldest_and_its_label_is_late_not_unknown():
    j = joiner(max_pending=3)
    for i in range(4):
        j.add_prediction(f"p{i}", i, "v1", i)
    assert j.pending == 3
    assert only(j.counts, evicted=1)
    assert j.add_label("p0", 0, 10) is None  # p0 was the oldest: evicted
    assert j.add_label("p1", 1, 10) == Outcome("v1", 1, 1, 1, 10)
    j.expire(TTL // 2)
    assert only(j.counts, evicted=1, late=1, joined=1)


def test_max_pending_labels_drops_the_oldest_early_label_as_unknown():
    j = joiner(max_pending_labels=3)
    for i in range(5):
        j.add_label(f"p{i}", i, i)
    assert j.pending_labels == 3
    assert only(j.counts, unknown_id=2)
    # p0 and p1 were dropped: their predictions wait; p4's label is still there.
    assert j.add_prediction("p0", 10, "v1", 0) is None
    assert j.add_prediction("p4", 10, "v1", 4) == Outcome("v1", 4, 4, 10, 4)
    assert j.pending_labels == 2
    assert j.pending == 1


def test_a_repeated_early_label_is_counted_too():
    """Bug: a second label for an id whose first label still waits for its prediction is
    silently dropped (join.py, ``add_label``: ``elif prediction_id not in self._labels``) —
    it is never counted, so the two labels give a single outcome."""
    j = joiner()
    j.add_label("p1", 1, 0)
    j.add_label("p1", 1, 5)  # e.g. a label re-delivered by the producer
    assert j.add_prediction("p1", 10, "v1", 1) is not None
    j.expire(10 * TTL)
    counted = sum(j.counts[k] for k in ("joined", "late", "duplicate", "unknown_id"))
    assert counted == 2, f"2 labels, {counted} counted: {j.counts}"


def test_a_re_sent_prediction_after_its_join_does_not_join_a_second_time():
    """Bug: ``add_prediction`` only ignores a re-sent prediction while the first copy waits
    (join.py, ``if prediction_id in self._predictions``); once joined, a re-sent copy waits
    again, so a repeated label joins it a second time (a second Outcome, counted ``joined``
    instead of ``duplicate``) and, without one, it is later counted ``expired`` as well."""
    j = joiner()
    j.add_prediction("p1", 0, "v1", 1)
    assert j.add_label("p1", 1, 10) is not None
    j.add_prediction("p1", 0, "v1", 1)  # the same prediction delivered again
    assert j.add_label("p1", 1, 20) is None, "one prediction joined twice"
    j.expire(10 * TTL)
    assert only(j.counts, joined=1, duplicate=1)


def random_events(seed: int, n: int = 3_000, repeated_early_labels: bool = True) -> list[tuple]:
    """Predictions with unique ids and their labels: on time, late (after ``ttl``), repeated,
    missing, or early (before the prediction, sometimes longer than ``label_wait``, sometimes
    repeated), labels for ids that never had a prediction, and watermarks moving forward."""
    rng = random.Random(seed)
    due: list[tuple[int, float, tuple]] = []  # (time, tie-breaker, event) scheduled for later
    events: list[tuple] = []

    def at(time: int, event: tuple) -> None:
        heapq.heappush(due, (time, len(events) + len(due) + rng.random(), event))

    now = 0
    for i in range(n):
        now += rng.randint(0, 20)
        while due and due[0][0] <= now:
            events.append(heapq.heappop(due)[2])
        pid, label = f"p{i}", rng.random() < 0.5
        prediction = ("prediction", pid, now, rng.choice(["v1", "v2"]), rng.random() < 0.5)
        r = rng.random()
        if r < 0.1:  # the label comes first, the prediction up to 2x label_wait later
            copies = rng.choice([1, 1, 1, 2]) if repeated_early_labels else 1
            events.extend([("label", pid, label, now)] * copies)
            later = now + rng.randint(0, 2 * LABEL_WAIT)
            at(later, (*prediction[:2], later, *prediction[3:]))
            continue
        events.append(prediction)
        if r < 0.75:  # labelled, now and then after ttl, now and then twice
            for _ in range(rng.choice([1, 1, 1, 2])):
                later = now + int(rng.expovariate(1 / (TTL / 3)))
                at(later, ("label", pid, label, later))
        elif r < 0.85:
            events.append(("label", f"unknown-{i}", label, now))
        if rng.random() < 0.2:
            events.append(("expire", now))
    for time, _, event in sorted(due):
        events.append(event)
        now = time
    events.append(("expire", now))  # so that events[-1][1] is the last event time
    return events


def play(j: LabelJoiner, events: list[tuple], limits: JoinConfig | None = None) -> list:
    outcomes = []
    for event in events:
        if event[0] == "prediction":
            outcomes.append(j.add_prediction(*event[1:]))
        elif event[0] == "label":
            outcomes.append(j.add_label(*event[1:]))
        else:
            j.expire(event[1])
        if limits is not None:
            assert j.pending <= limits.max_pending
            assert j.pending_labels <= limits.max_pending_labels
    return outcomes


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(
    "repeated_early_labels", [False, True], ids=["single-early-labels", "repeated-early-labels"]
)
def test_every_label_and_every_prediction_ends_up_in_exactly_one_outcome(
    seed, repeated_early_labels
):
    """Fails with repeated early labels: see test_a_repeated_early_label_is_counted_too."""
    config = JoinConfig(ttl=TTL, label_wait=LABEL_WAIT, max_pending=60, max_pending_labels=5)
    events = random_events(seed, repeated_early_labels=repeated_early_labels)
    j = LabelJoiner(config)
    outcomes = play(j, events, limits=config)
    j.expire(events[-1][1] + 10 * config.ttl + 10 * config.label_wait)
    assert j.pending == 0
    assert j.pending_labels == 0
    n_predictions = sum(e[0] == "prediction" for e in events)
    n_labels = sum(e[0] == "label" for e in events)
    # every path was actually exercised
    assert all(j.counts[k] > 0 for k in OUTCOMES), j.counts
    assert j.counts["joined"] == sum(o is not None for o in outcomes)
    assert j.counts["joined"] + j.counts["expired"] + j.counts["evicted"] == n_predictions
    counted = sum(j.counts[k] for k in ("joined", "late", "duplicate", "unknown_id"))
    assert counted == n_labels, f"{n_labels} labels, {counted} counted: {j.counts}"


@pytest.mark.parametrize("seed", range(5))
def test_the_oldest_go_first_through_heavy_churn(seed):
    """Joins, expiries and evictions in random order, many times the cap: the waiting
    predictions stay exactly those an ordered reference keeps (the store is rebuilt without
    its deletions' holes along the way), and the cap holds, evicting 1/256 of it at once."""
    from collections import OrderedDict

    rng = random.Random(seed)
    cap = 2_000
    j = joiner(max_pending=cap, ttl=1_500, remember=100_000)
    reference: OrderedDict[str, int] = OrderedDict()
    evicted = expired = 0
    t = 0
    for i in range(30_000):
        t += rng.randrange(3)
        j.add_prediction(f"p{i}", t, "v1", i % 3)
        reference[f"p{i}"] = t
        if len(reference) > cap:
            for _ in range(len(reference) - cap + cap // 256):
                gone = reference.popitem(last=False)[0]
                evicted += 1
        assert j.pending <= cap
        if rng.random() < 0.4 and reference:  # a label for a random waiting prediction
            pid = rng.choice(list(reference)[-500:])
            assert j.add_label(pid, 1, t) is not None
            del reference[pid]
        if i % 2_999 == 0:
            j.expire(t)
            while reference and next(iter(reference.values())) < t - 1_500:
                reference.popitem(last=False)
                expired += 1
    assert [pid for pid, _ in j.to_state()["predictions"]] == list(reference)
    assert j.counts["evicted"] == evicted > 0
    assert j.counts["expired"] == expired > 0
    assert j.add_label(gone, 1, t) is None
    assert j.counts["late"] == 1


def test_shared_totals_receive_the_same_increments_as_counts():
    totals: dict[str, int] = {}
    config = JoinConfig(ttl=TTL, label_wait=LABEL_WAIT, max_pending=60, max_pending_labels=5)
    first, second = LabelJoiner(config, totals), LabelJoiner(config, totals)
    play(first, random_events(4, n=1_000))
    assert {k: totals.get(k, 0) for k in OUTCOMES} == first.counts
    play(second, random_events(5, n=1_000))
    for k in OUTCOMES:
        assert totals.get(k, 0) == first.counts[k] + second.counts[k]
    assert sum(totals.values()) > 0


@pytest.mark.parametrize("cut", [10, 1_500, 2_900])
def test_state_round_trip_through_json_continues_identically(cut):
    config = JoinConfig(ttl=TTL, label_wait=LABEL_WAIT, max_pending=60, max_pending_labels=5)
    events = random_events(6)
    original = LabelJoiner(config)
    play(original, events[:cut])
    restored = LabelJoiner(config)
    restored.load_state(orjson.loads(orjson.dumps(original.to_state())))
    assert restored.counts == original.counts
    assert restored.pending == original.pending
    assert restored.pending_labels == original.pending_labels
    assert play(restored, events[cut:]) == play(original, events[cut:])
    assert restored.counts == original.counts


def test_load_state_refuses_more_pending_predictions_than_max_pending():
    big = joiner(max_pending=10)
    for i in range(10):
        big.add_prediction(f"p{i}", i, "v1", 1)
    state = orjson.loads(orjson.dumps(big.to_state()))
    with pytest.raises(StateError):
        joiner(max_pending=5).load_state(state)
    same = joiner(max_pending=10)
    same.load_state(state)  # it fits where it came from
    assert same.pending == 10


def test_recent_ids_remember_the_last_half_to_all_of_size_and_forget_older_ones():
    from detectors.join import _RecentIds

    ids = _RecentIds(1_000)
    names = [f"id-{i}" for i in range(5_000)]
    for count, name in enumerate(names, 1):
        ids.add(name)
        if count % 97 == 0:
            assert min(count, 500) <= len(ids) <= 1_000
            assert all(n in ids for n in names[max(0, count - 500) : count])
    forgotten = sum(n in ids for n in names[:3_900])
    # Forgotten ids are found again only through a 32-bit hash collision.
    assert forgotten <= 1
    assert "never-added" not in ids


def test_recent_ids_survive_a_dump_and_load_and_refuse_bad_hashes():
    from detectors.join import _RecentIds

    ids = _RecentIds(100)
    for i in range(130):
        ids.add(f"id-{i}")
    copy = _RecentIds(100)
    copy.load(orjson.loads(orjson.dumps(ids.dump())))
    assert [f"id-{i}" in copy for i in range(130)] == [f"id-{i}" in ids for i in range(130)]
    assert len(copy) == len(ids)
    with pytest.raises(StateError, match="32-bit"):
        copy.load([1 << 40])
