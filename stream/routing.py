"""Where a decoded input event goes: the core, its model's partition, or nowhere (already in state).

One rule, used when a fetch is handled and again when the core gives events back (to find the
events it was given):

``ok``
    the event is read on its model's partition and its model's saved state does not hold it
    yet: it goes to the core;
``rerouted``
    it is read on another partition than its ``model_id``'s (an unkeyed record, another key,
    another partitioner): it is sent to its model's partition, where the worker owning that
    model applies it;
``skipped``
    its model's state, restored after a restart or a rebalance, already includes it (its
    offset is before the one the state was saved at).

A model's partition is Kafka's default partitioner's (Java client, aiokafka): murmur2 of the
key ``model_id``, positive, modulo the partition count, the same for every input topic.

Examples
--------
>>> router = Router(partitions=4)
>>> home = router.home("churn")
>>> print(router.route("churn", "model.predictions", home, offset=10))
ok
>>> print(router.route("churn", "model.predictions", (home + 1) % 4, offset=10))
rerouted
>>> router.resume["churn"] = {"model.predictions": 11}  # its restored state holds offset 10
>>> print(router.route("churn", "model.predictions", home, offset=10))
skipped
>>> reroute_cause(None, "churn", partition=0, partitions=4)
'unkeyed'
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from enum import StrEnum

from aiokafka.partitioner import murmur2

__all__ = ["REROUTE_FIX", "Route", "Router", "reroute_cause"]

# Model partitions remembered (a cache: cleared when full, recomputed on demand).
_MAX_HOMES = 100_000


class Route(StrEnum):
    """What becomes of a decoded event (``driftline_events_total{outcome}``)."""

    OK = "ok"
    REROUTED = "rerouted"
    SKIPPED = "skipped"


# Enum members read through the class cost ~0.1 us each: the hot path returns these.
_OK, _REROUTED, _SKIPPED = Route.OK, Route.REROUTED, Route.SKIPPED

#: Why a record was read away from its model's partition (``driftline_rerouted_total{cause}``),
#: and what its producer should change.
REROUTE_FIX = {
    "unkeyed": "Key every record by its model_id.",
    "librdkafka_partitioner": (
        "The record is keyed by model_id and sits where librdkafka's default partitioner "
        "(CRC32, 'consistent_random': confluent-kafka and other librdkafka clients) puts it: "
        "set partitioner=murmur2_random in that producer's configuration (Java-compatible)."
    ),
    "other_partitioner": (
        "The record is keyed by model_id but was placed by another partitioner or an explicit "
        "partition: use Kafka's default murmur2 partitioner (librdkafka: murmur2_random)."
    ),
    "other_key": "The record's key is not its model_id: key every record by its model_id.",
}


def reroute_cause(key: bytes | None, model_id: str, partition: int, partitions: int) -> str:
    """Why a record holding ``model_id``'s event sits on ``partition`` (a key of
    :data:`REROUTE_FIX`)."""
    if key is None:
        return "unkeyed"
    if key != model_id.encode():
        return "other_key"
    if zlib.crc32(key) % partitions == partition:
        return "librdkafka_partitioner"
    return "other_partitioner"


class Router:
    """The routing rule of one worker: the input topics' partition count and, per restored
    model, the first offset per topic its saved state does not hold (``resume``)."""

    __slots__ = ("_homes", "partitions", "resume")

    def __init__(self, partitions: int, resume: dict[str, dict[str, int]] | None = None) -> None:
        if partitions < 1:
            raise ValueError(f"partitions must be at least 1, got {partitions}")
        self.partitions = partitions
        #: model_id -> topic -> first offset its restored state does not include.
        self.resume: dict[str, dict[str, int]] = {} if resume is None else resume
        self._homes: dict[str, int] = {}

    def home(self, model_id: str) -> int:
        """The model's partition."""
        home = self._homes.get(model_id)
        if home is None:
            if len(self._homes) >= _MAX_HOMES:
                self._homes.clear()
            home = (murmur2(model_id.encode()) & 0x7FFFFFFF) % self.partitions
            self._homes[model_id] = home
        return home

    def at_home(self, model_ids: Iterable[str], topic: str, partition: int, offset: int) -> bool:
        """Whether :meth:`route` says OK for every event of ``model_ids`` read on ``topic`` /
        ``partition`` from ``offset`` on: each model's home is ``partition`` and no restored
        state holds any of those offsets (then it need not be asked one event at a time)."""
        resume = self.resume
        home = self.home
        for model_id in model_ids:
            if home(model_id) != partition:
                return False
            if resume:
                done = resume.get(model_id)
                if done is not None and offset < done.get(topic, -1):
                    return False
        return True

    def route(self, model_id: str, topic: str, partition: int, offset: int) -> Route:
        """Where the event of ``model_id`` read at ``topic``/``partition``/``offset`` goes."""
        home = self._homes.get(model_id)
        if home is None:
            home = self.home(model_id)
        if home != partition:
            return _REROUTED
        resume = self.resume
        if resume:
            done = resume.get(model_id)
            if done is not None and offset < done.get(topic, -1):
                return _SKIPPED
        return _OK
