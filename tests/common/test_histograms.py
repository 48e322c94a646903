"""Histogram merging across locust processes and percentile read-out."""

from hdrh.histogram import HdrHistogram

from bench.common import histograms


def hist(values: list[int]) -> str:
    h = HdrHistogram(*histograms.HIST_RANGE)
    for v in values:
        h.record_value(v)
    return histograms.encode(h)


def test_merge_keeps_every_value() -> None:
    merged = histograms.merge([hist([100] * 90), hist([10_000] * 10)])
    assert merged.get_total_count() == 100
    s = histograms.summary(merged)
    assert s["p50"] == 100 and s["p90"] == 100
    assert abs(s["p99"] - 10_000) <= 10 and abs(s["max"] - 10_000) <= 10
    assert abs(s["mean"] - 1090) <= 2


def test_microsecond_resolution_survives() -> None:
    s = histograms.summary(histograms.merge([hist([1234, 1235, 1236])]))
    assert s["p50"] == 1235


def test_empty_summary_is_zeros() -> None:
    assert set(histograms.summary(histograms.merge([])).values()) == {0}
