"""What the input pipeline produces, sent without waiting and acknowledged in one place.

Alerts and commands (CloudEvents, key ``model_id``), dead letters, events re-routed to their
model's partition, and model state records all go through :class:`Outputs`: each send is
started at once and kept in flight; :meth:`Outputs.flush` waits until the broker has
acknowledged every one. The pipeline flushes before it writes state that follows from them and
before it commits offsets, which is what makes outputs at least once and state exactly once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

import msgspec

from schemas import Topics, encode
from schemas.cloudevents import Alert, Command
from stream.deadletter import DeadLetter
from stream.routing import REROUTE_FIX, Router, reroute_cause

__all__ = ["CLOUDEVENTS_HEADERS", "Outputs"]

logger = logging.getLogger("driftline.pipeline")

CLOUDEVENTS_HEADERS = [("content-type", b"application/cloudevents+json; charset=utf-8")]


class Outputs:
    """The pipeline's sends through Faust's producer (``send`` returns a future of the ack).

    Parameters
    ----------
    producer
        Faust's producer (or anything with its ``send`` signature).
    topics
        The live service's topics.
    state_topic
        The compacted topic of model state records.
    counts
        ``events``, ``deadletters`` and ``rerouted`` counters to add to (the pipeline's stats).
    """

    def __init__(self, producer: Any, topics: Topics, state_topic: str, counts: Any) -> None:
        self.producer = producer
        self.topics = topics
        self.state_topic = state_topic
        self.events: Counter[tuple[str, str]] = counts.events
        self.deadletters: Counter[tuple[str, str]] = counts.deadletters
        self.rerouted: Counter[tuple[str, str]] = counts.rerouted
        self._in_flight: list[Any] = []
        self._warned: set[tuple[str, str]] = set()  # (topic, cause) of re-routes logged

    @property
    def in_flight(self) -> int:
        """Sends not yet awaited."""
        return len(self._in_flight)

    def cloudevents(self, outputs: list[Alert | Command]) -> None:
        for out in outputs:
            topic = self.topics.alerts if isinstance(out, Alert) else self.topics.commands
            self.send(topic, out.subject.encode(), encode(out), headers=CLOUDEVENTS_HEADERS)

    def dead_letter(self, letter: DeadLetter) -> None:
        self.events[(letter.source_topic, "deadletter")] += 1
        self.deadletters[(letter.source_topic, letter.reason)] += 1
        self.send(self.topics.deadletter, letter.key, letter.value, headers=letter.headers)

    def reroute(self, record: Any, topic: str, event: Any, router: Router) -> None:
        """Send an event read away from its model's partition to that partition (the worker
        owning it applies it there), keeping the record's timestamp for the ordering."""
        model_id = event.model_id
        home = router.home(model_id)
        cause = reroute_cause(record.key, model_id, record.partition, router.partitions)
        self.events[(topic, "rerouted")] += 1
        self.rerouted[(topic, cause)] += 1
        if (topic, cause) not in self._warned:
            self._warned.add((topic, cause))
            logger.warning(
                "%s: records for model %s arrive on partition %d, not on its partition %d: "
                "re-routed there (counted in driftline_rerouted_total). %s",
                topic,
                model_id,
                record.partition,
                home,
                REROUTE_FIX[cause],
            )
        self.send(
            topic,
            model_id.encode(),
            msgspec.json.encode(event),
            partition=home,
            # (Seconds, rounded so that Faust's conversion back gives the same millisecond.)
            timestamp=(record.timestamp + 0.5) / 1000 if record.timestamp >= 0 else None,
        )

    def state(self, model_id: str, blob: bytes | None, partition: int) -> None:
        """A model's state record (None: a tombstone, the model starts afresh after a restart)."""
        self.send(self.state_topic, model_id.encode(), blob, partition=partition)

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        *,
        partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        timestamp: float | None = None,
    ) -> None:
        # Faust's producer takes the timestamp in seconds.
        self._in_flight.append(
            asyncio.ensure_future(
                self.producer.send(topic, key, value, partition, timestamp, headers)
            )
        )

    async def flush(self) -> None:
        """Wait until the broker has acknowledged every send so far."""
        pending, self._in_flight = self._in_flight, []
        # Each send resolves to a future of the broker's acknowledgement.
        acks = await asyncio.gather(*pending)
        await asyncio.gather(*acks)
