"""Model state on Kafka: explicit encoding, optional authentication, never pickle.

Each model's state is one record on a compacted topic, keyed by ``model_id``, written to the
partition with the same number as the model's input partition (inputs are co-partitioned), so
the worker that owns partition *p* of the inputs restores partition *p* of the state.

A record is ``MAGIC + [HMAC-SHA256] + JSON``::

    b"DLS0" + json            unsigned (no state key configured)
    b"DLS1" + mac(32) + json  signed with DRIFTLINE_STATE_KEY (or _FILE)

The JSON holds the input offsets the state reflects (per input topic), so a restarted worker
skips the events a model's state already includes. Readers never execute anything: JSON is
parsed by orjson and validated by the core (:class:`detectors.base.StateError` on anything that
does not fit); a signed store refuses unsigned or tampered records.

Examples
--------
>>> codec = StateCodec(key=b"k" * 32)
>>> blob = codec.encode("m1", {"offsets": {"model.predictions": 10}, "state": {}})
>>> codec.decode("m1", blob)["offsets"]
{'model.predictions': 10}
>>> StateCodec().decode("m1", blob)
Traceback (most recent call last):
...
stream.state.StateRejected: m1: signed state but no DRIFTLINE_STATE_KEY to verify it
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import orjson

__all__ = ["StateCodec", "StateRejected", "MAX_STATE_BYTES"]

UNSIGNED = b"DLS0"
SIGNED = b"DLS1"
#: Largest state record written or read (the state topic's max.message.bytes).
MAX_STATE_BYTES = 32 * 1024 * 1024


class StateRejected(ValueError):
    """A state record that must not be loaded (tampered, unsigned, foreign, oversized)."""


class StateCodec:
    """Encode and decode state records, signing them when a key is given."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key

    @property
    def signed(self) -> bool:
        return self._key is not None

    def _mac(self, model_id: str, body: bytes) -> bytes:
        assert self._key is not None
        # The model id is part of the MAC: a valid record cannot be replayed under another key.
        return hmac.new(self._key, model_id.encode() + b"\x00" + body, hashlib.sha256).digest()

    def encode(self, model_id: str, record: dict[str, Any]) -> bytes:
        body = orjson.dumps(record)
        if self._key is None:
            return UNSIGNED + body
        return SIGNED + self._mac(model_id, body) + body

    def decode(self, model_id: str, blob: bytes) -> dict[str, Any]:
        if len(blob) > MAX_STATE_BYTES:
            raise StateRejected(f"{model_id}: state record of {len(blob)} bytes is too large")
        magic = blob[:4]
        if magic == SIGNED:
            if self._key is None:
                raise StateRejected(
                    f"{model_id}: signed state but no DRIFTLINE_STATE_KEY to verify it"
                )
            mac, body = blob[4:36], blob[36:]
            if not hmac.compare_digest(mac, self._mac(model_id, body)):
                raise StateRejected(f"{model_id}: state signature does not match (tampered?)")
        elif magic == UNSIGNED:
            if self._key is not None:
                raise StateRejected(f"{model_id}: unsigned state refused (a state key is set)")
            body = blob[4:]
        else:
            raise StateRejected(f"{model_id}: not a driftline state record")
        try:
            record = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise StateRejected(f"{model_id}: state is not valid JSON: {exc}") from None
        if not isinstance(record, dict) or not isinstance(record.get("offsets"), dict):
            raise StateRejected(f"{model_id}: state record without offsets")
        return record
