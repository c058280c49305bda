"""What every driftline detector looks like (in river's style).

* constructor arguments are stored as public attributes of the same name, and checked there;
* internal state is ``_``-prefixed and rebuilt by ``_reset()``;
* ``update(x)`` does the work; ``drift_detected`` is a read-only property;
* ``statistic`` and ``threshold`` say how close the detector is to (or how far past) its line;
* ``to_state()`` / ``from_state()`` save and restore the whole detector as plain JSON-able data
  (no pickle: state travels through Kafka and must be safe to read back).

Unlike river's detectors, whose ``drift_detected`` is true only on the update that found a change,
``drift_detected`` here is a *state*: true from the moment a drift is confirmed until the stream
is back within bounds. Alerts fire on the way in and resolve on the way out.
"""

from __future__ import annotations

import abc
import functools
import inspect
from collections.abc import Sequence
from typing import Any, ClassVar, Literal, Self

__all__ = ["Detector", "DriftDetector", "StateError"]


class StateError(ValueError):
    """A saved state does not fit the detector it is loaded into."""


class Detector(abc.ABC):
    """Base class of driftline's detectors."""

    #: Bumped whenever the layout of ``to_state()`` changes; older states are refused.
    STATE_VERSION = 1

    def __init__(self) -> None:
        self._reset()

    @abc.abstractmethod
    def _reset(self) -> None:
        """Forget everything seen; keep the parameters."""

    @property
    @abc.abstractmethod
    def drift_detected(self) -> bool:
        """Whether the watched stream is in a drifted (or stalled, or degraded) state now."""

    @property
    def statistic(self) -> float:
        """The detector's current test statistic."""
        return 0.0

    @property
    def threshold(self) -> float:
        """The value of :attr:`statistic` past which a drift is confirmed."""
        return 0.0

    def reset(self) -> None:
        """Forget everything seen; keep the parameters."""
        self._reset()

    # -- parameters --------------------------------------------------------------------------

    def params(self) -> dict[str, Any]:
        """The constructor's arguments, as this detector holds them."""
        return self._get_params()

    def _get_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _param_names(type(self))}

    def clone(self, **overrides: Any) -> Self:
        """A fresh detector with the same parameters (and ``overrides``)."""
        return type(self)(**{**self._get_params(), **overrides})

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self._get_params().items())
        return f"{type(self).__name__}({params})"

    # -- state -------------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """Everything needed to continue exactly where this detector is, as plain data."""
        return {
            "type": type(self).__name__,
            "version": self.STATE_VERSION,
            "params": self._get_params(),
            "state": self._dump(),
        }

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> Self:
        """Rebuild a detector saved by :meth:`to_state`; :class:`StateError` if it does not fit."""
        if not isinstance(data, dict) or data.get("type") != cls.__name__:
            raise StateError(f"not a {cls.__name__} state")
        if data.get("version") != cls.STATE_VERSION:
            raise StateError(
                f"{cls.__name__} state version {data.get('version')!r}, "
                f"expected {cls.STATE_VERSION}"
            )
        params = data.get("params")
        if not isinstance(params, dict):
            raise StateError(f"{cls.__name__} state has no parameters")
        try:
            detector = cls(**params)
            detector._load(data["state"])
        except StateError:
            raise
        except (KeyError, TypeError, ValueError, IndexError, OverflowError) as exc:
            raise StateError(f"{cls.__name__} state is malformed: {exc}") from None
        return detector

    @abc.abstractmethod
    def _dump(self) -> dict[str, Any]:
        """The internal state, as plain data."""

    @abc.abstractmethod
    def _load(self, state: dict[str, Any]) -> None:
        """Restore the internal state from :meth:`_dump`'s output."""


class DriftDetector(Detector):
    """A detector fed a stream of values: what the core asks of every feature, prediction,
    score and error detector.

    A detector first fills its reference (:attr:`ready` is False meanwhile), then watches;
    :meth:`update_many` returns the indices at which :attr:`drift_detected` flipped, so one
    call can report a drift that came and went.
    """

    #: What the detector is fed: numbers, categories (hashable values), or 0/1 errors.
    takes: ClassVar[Literal["numbers", "categories", "errors"]]

    @property
    @abc.abstractmethod
    def ready(self) -> bool:
        """Whether the reference is complete (before that, nothing can drift)."""

    @property
    @abc.abstractmethod
    def n(self) -> int:
        """Values watched since the reference was complete."""

    @property
    def trigger(self) -> str:
        """What started the current (or last) drift: the name alerts report as ``detector``;
        empty if the detector has no more specific name than its alert's."""
        return ""

    @abc.abstractmethod
    def update_many(self, values: Sequence[Any]) -> list[int]:
        """Update with many values; return the indices at which :attr:`drift_detected`
        flipped."""

    def update(self, x: Any) -> None:
        """Update with one value."""
        self.update_many((x,))


@functools.cache
def _param_names(cls: type) -> tuple[str, ...]:
    """The constructor's parameters (cached: every checkpoint asks for every detector's)."""
    return tuple(
        name
        for name, p in inspect.signature(cls.__init__).parameters.items()  # type: ignore[misc]
        if name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    )
