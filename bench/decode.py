"""How fast a fetch's prediction records become something the core can use: the first
measurement of issue 18 (a columnar hot path), in-process, no broker.

    python bench/decode.py [--n 200000]

Candidates, each over the same ~400-byte prediction messages of bench/workload.py:

* ``EventDecoder.decode_batch`` per message: what the worker does today (validated, typed
  ``Prediction`` objects, one per event);
* ``orjson.loads`` per message: dicts, no validation (the raw consumer loop's cost);
* ``msgspec`` decoding the fetch's values joined as one JSON array into typed structs;
* ``pyarrow.json.read_json`` over the values joined by newlines: columns (an Arrow table),
  with ``to_numpy`` of one numeric feature column to show what a column costs to reach.

Printed: events/s of each, best of three runs.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import msgspec
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.workload import events  # (the repository's, not an install)
from schemas import EventDecoder


class _Prediction(msgspec.Struct):
    model_id: str
    model_version: str
    prediction_id: str
    timestamp: int
    prediction: bool | float | int | str
    score: float | None = None
    latency_ms: float | None = None
    features: dict[str, float | str] | None = None


def best_of(runs: int, work) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    args = parser.parse_args()
    values = [value for kind, _, value in events(args.n, label_share=0.0) if kind == "predictions"]
    n = len(values)
    print(f"{n:,} prediction messages, {sum(map(len, values)) / n:.0f} bytes each on average")
    decoder = EventDecoder()
    typed = msgspec.json.Decoder(list[_Prediction])

    def today() -> None:
        for value in values:
            decoder.decode_batch("prediction", value)

    def dicts() -> None:
        for value in values:
            orjson.loads(value)

    def structs() -> None:
        typed.decode(b"[" + b",".join(values) + b"]")

    results = {
        "EventDecoder.decode_batch per message (today)": best_of(3, today),
        "orjson.loads per message": best_of(3, dicts),
        "msgspec, one array of typed structs": best_of(3, structs),
    }
    try:
        import pyarrow.json as pj
    except ImportError:
        print("  (pyarrow not installed: pip install 'driftline[parquet]')")
    else:

        def columns() -> None:
            table = pj.read_json(io.BytesIO(b"\n".join(values)))
            table.column("features").combine_chunks().field("f0").to_numpy(zero_copy_only=False)

        results["pyarrow.json.read_json, columns"] = best_of(3, columns)
    for name, seconds in results.items():
        print(f"  {name:<48} {n / seconds:>12,.0f} events/s")


if __name__ == "__main__":
    main()
