"""Which events a model's sample keeps: a deterministic rule on the prediction id.

A model configured with ``sample: 0.1`` is monitored on a tenth of its traffic. Which tenth is
decided by the event's *key*, never by chance or by arrival: a prediction and its label share a
``prediction_id``, so a label is kept exactly when its prediction is, and the join of the sample
stays whole. The key of a prediction or a label is its ``prediction_id``; an input's is its
``prediction_id`` when it has one, else its ``event_id``; an input with neither is always kept.

The rule, for a producer that wants to sample the same events itself (any language)::

    h    = BLAKE2b(key as UTF-8 bytes) with an 8-byte digest (digest_size=8; no key, salt
           or personalisation), read as an unsigned big-endian 64-bit integer
    keep = h < rate * 2**64

(An 8-byte BLAKE2b is not BLAKE2b-512 cut to 8 bytes: the digest size is a parameter of the
hash.) ``rate * 2**64`` is exact in IEEE double precision (a product with a power of two); as an
integer comparison, ``keep = h < ceil(rate * 2**64)``. A rate of 1 keeps everything (no hash is
computed). The rule uses no seed and no state: the same key is kept or not in every process,
after every restart, in ``driftline replay`` as in the live worker. Samples nest (the keys kept
at 0.01 are among those kept at 0.1), and the rule is idempotent: events a producer already
sampled with it pass a sample of the same rate whole.

Examples
--------
>>> key_hash("p-1")  # a test vector for a producer's own implementation
9103581961592979310
>>> round(key_hash("p-1") / 2**64, 4)  # so "p-1" is kept by every rate above 0.4935
0.4935
>>> keeps("p-1", 0.1), keeps("p-1", 0.5), keeps("p-1", 1.0)
(False, True, True)
>>> from schemas import Label, Prediction
>>> events = [Prediction(model_id="m", model_version="1", prediction_id=f"p-{i}",
...                      timestamp=1_795_255_200_000, prediction=True) for i in range(1000)]
>>> events += [Label(model_id="m", prediction_id=f"p-{i}", timestamp=1_795_255_200_001,
...                  label=True) for i in range(1000)]
>>> kept, left_out = split(events, 0.1)
>>> len(kept), left_out
(190, {'prediction': 905, 'label': 905})
>>> sorted(e.prediction_id for e in kept if e.kind == "prediction") == sorted(
...     e.prediction_id for e in kept if e.kind == "label")
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from hashlib import blake2b
from typing import Final, TypeVar

from schemas import Input, Label, Prediction

__all__ = ["key_hash", "keeps", "sample_key", "split"]

#: Hashes are 64-bit: ``h / 2**64`` is uniform in [0, 1).
SPACE: Final = 1 << 64

E = TypeVar("E", bound=Prediction | Input | Label)


def key_hash(key: str) -> int:
    """The 64-bit hash of a sample key: BLAKE2b of its UTF-8 bytes, 8 bytes, big-endian.

    >>> key_hash(""), key_hash("ü") != key_hash("u")
    (16476032584258269876, True)
    """
    return int.from_bytes(blake2b(key.encode(), digest_size=8).digest(), "big")


def keeps(key: str, rate: float) -> bool:
    """Whether a sample at ``rate`` (in (0, 1]) keeps the events of ``key``.

    >>> [keeps(f"p-{i}", 0.5) for i in range(6)]
    [True, True, False, False, False, False]
    """
    _check(rate)
    return rate >= 1.0 or key_hash(key) < rate * SPACE


def sample_key(event: Prediction | Input | Label) -> str | None:
    """The key that decides whether ``event`` is kept: its ``prediction_id``; an input's
    ``prediction_id``, else its ``event_id``, else ``None`` (always kept).

    >>> from schemas import Input
    >>> sample_key(Input(model_id="m", timestamp=1_795_255_200_000, features={}, event_id="e"))
    'e'
    """
    key = event.prediction_id
    return event.event_id if key is None else key


def split(events: Sequence[E], rate: float) -> tuple[list[E], dict[str, int]]:
    """The events a sample at ``rate`` keeps, in their order, and how many it left out by kind
    (``prediction``, ``input``, ``label``; kinds with none left out are absent).

    >>> split([], 0.5)
    ([], {})
    """
    _check(rate)
    if rate >= 1.0:
        return list(events), {}
    # h < ceil(rate * 2**64), compared as 8 big-endian bytes: the same order, one call fewer.
    below = math.ceil(rate * SPACE).to_bytes(8, "big")
    kept: list[E] = []
    left_out: dict[str, int] = {}
    for event in events:
        key = event.prediction_id
        if key is None:
            key = event.event_id
        if key is None or blake2b(key.encode(), digest_size=8).digest() < below:
            kept.append(event)
        else:
            kind = event.kind
            left_out[kind] = left_out.get(kind, 0) + 1
    return kept, left_out


def _check(rate: float) -> None:
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"a sample rate is in (0, 1] (1: every event), got {rate!r}")
