"""benchmarks/prometheus_series.py's synthetic target: the series count it reports is the one Prometheus sees.

The benchmark divides memory by N, so N must be exactly the number of distinct series its exposition holds,
the text must parse as Prometheus text format, and every series must change value from one rendering to the
next (identical samples would compress to nothing and flatter the store).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[2]


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bench_prometheus_series", REPO / "benchmarks" / "prometheus_series.py"
    )
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_prometheus_series"] = mod
    spec.loader.exec_module(mod)
    return mod


bench = _bench()


def samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            assert key not in out, f"duplicate series {key}"
            out[key] = s.value
    return out


@pytest.mark.parametrize("n", [0, 25, 1000, 4025])
def test_the_exposition_holds_exactly_n_distinct_series(n: int) -> None:
    assert len(samples(bench.render(n, 0))) == n


def test_every_series_changes_value_between_renderings_and_buckets_stay_cumulative() -> None:
    a, b = samples(bench.render(1000, 0)), samples(bench.render(1000, 1))
    assert a.keys() == b.keys()
    assert all(a[k] != b[k] for k in a)
    histograms: dict[tuple[tuple[str, str], ...], list[tuple[float, float]]] = {}
    for (name, labels), value in b.items():
        if name.endswith("_bucket"):
            rest = tuple(x for x in labels if x[0] != "le")
            histograms.setdefault(rest, []).append((float(dict(labels)["le"]), value))
    assert len(histograms) == 1000 // bench.SERIES_PER_UNIT
    for rest, buckets in histograms.items():
        counts = [v for _, v in sorted(buckets)]
        assert counts == sorted(counts)
        assert counts[-1] == b[(bench.HISTOGRAM + "_count", rest)]


def test_the_report_prints_a_dash_for_a_ratio_to_a_peer_that_used_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    """A short ``--window`` can see Prometheus alone use no CPU (nor grow): its ratios are '-', not a crash."""
    names = ("prometheus (rw)", "prometheus (alone)", "receive-0", "receive-1")

    def result(series: int, rss: int, cpu_s: dict[str, float]) -> object:
        roles = {n: bench.Role(n, None, "", rss=[rss], cpu_s=cpu_s.get(n, 0.0)) for n in names}
        return bench.Result(series, 5.0, roles, 0.001, 0.002, 0, 0, 0, 0.0, (1.0, 1.0))

    base = result(0, 100 << 20, {})
    grown = result(100, 100 << 20, {"prometheus (rw)": 0.01, "receive-0": 0.01})
    bench.report([base, grown])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == "| 100 | - | - | - | - | - | - |"
