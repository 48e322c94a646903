"""Latency histograms: merge the recorder's encoded HdrHistograms and read percentiles (µs)."""

from __future__ import annotations

from collections.abc import Iterable

from hdrh.histogram import HdrHistogram

HIST_RANGE = (1, 3_600_000_000, 3)
"""1 µs .. 1 h at 3 significant digits. (No locust import here: it monkey-patches.)"""

PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99.9": 99.9}


def merge(encoded: Iterable[str]) -> HdrHistogram:
    """One histogram holding every value of the encoded ones."""
    merged = HdrHistogram(*HIST_RANGE)
    for item in encoded:
        merged.add(HdrHistogram.decode(item))
    return merged


def summary(histogram: HdrHistogram) -> dict[str, int]:
    """p50/p90/p99/p99.9/max/mean in whole microseconds (all 0 for an empty histogram)."""
    if histogram.get_total_count() == 0:
        return {**dict.fromkeys(PERCENTILES, 0), "max": 0, "mean": 0}
    values = {k: int(histogram.get_value_at_percentile(p)) for k, p in PERCENTILES.items()}
    values["max"] = int(histogram.get_max_value())
    values["mean"] = round(histogram.get_mean_value())
    return values


def encode(histogram: HdrHistogram) -> str:
    return str(histogram.encode().decode())
