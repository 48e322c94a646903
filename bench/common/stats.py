"""Statistics for comparisons and error bars: intervals whose coverage is stated, and verdicts.

**Interval of one median** (error bars, tables, rankings): the distribution-free
order-statistic interval ``[x(k), x(n+1-k)]`` of the sorted trials. Its coverage of the true
median is exact for any continuous distribution, ``1 − 2·P(Binomial(n, ½) < k)``; ``k`` is the
largest rank whose coverage is ≥ 95 %, or 1 (``[min, max]``) when no rank reaches it:
at n = 3 that is 75 %, at n = 4 87.5 %, at n = 5 93.75 %, at n = 6 96.9 %. The coverage is
returned with the interval so it can be printed.

**B against A** (verdicts): the ratio B/A *in the metric itself* (req/s: a ratio of 2.4 is
+140 % req/s, "2.40x faster"; a cost such as µs/request or latency: a ratio of 0.8 is −20 %,
"1.25x faster"). Within one run trials run in rounds (each series once per round), so B and
A are *paired by round*: the ratio is the geometric mean of the per-round ratios and its
95 % CI a t-interval on the log ratios, assuming the log ratios of the rounds are
independent and roughly normal. Between two runs nothing pairs the trials: the ratio of
geometric means with a Welch t-interval on log values (same assumption for each side).

A comparison says one of three things: B is faster/slower (the CI excludes 1), there is no
difference within ±``MARGIN_PERCENT`` (the whole CI lies inside that band: equivalence), or
the run did not resolve it, with how many trials would, from the measured spread. The
*minimum detectable difference* is the true change this comparison would call at 95 %
confidence with 80 % power, from its measured spread. Identical values measure no noise:
such a comparison is "not resolved", never significant.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace

from scipy import stats

CONFIDENCE = 0.95
POWER = 0.80
MARGIN_PERCENT = 5.0  # the difference a verdict is asked to resolve (and the equivalence band)
MAX_TRIALS = 1000

VERDICT_METHOD = (
    "B/A in the metric itself; within a run paired by round (geometric mean of per-round "
    "ratios, 95 % t-interval on log ratios), between runs unpaired (Welch t-interval on log "
    f"values); 'no difference' only when the CI lies within ±{MARGIN_PERCENT:g} %"
)


# --- the interval of one median --------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    """A median and its distribution-free order-statistic interval with exact coverage."""

    median: float
    low: float
    high: float
    coverage: float  # probability that [low, high] holds the true median (0 for n < 2)
    n: int

    def overlaps(self, other: Interval) -> bool:
        return self.low <= other.high and other.low <= self.high


def order_coverage(n: int, k: int) -> float:
    """Coverage of ``[x(k), x(n+1-k)]`` for the median of *n* continuous values."""
    return float(1 - 2 * stats.binom.cdf(k - 1, n, 0.5))


def median_interval(values: Sequence[float]) -> Interval:
    """The median of *values* and its order-statistic interval (see the module docstring)."""
    if not values:
        raise ValueError("no values")
    xs = sorted(float(v) for v in values)
    n = len(xs)
    median = float(statistics.median(xs))
    if n < 2:
        return Interval(median, median, median, 0.0, n)
    k = 1
    while k + 1 <= (n + 1) // 2 and order_coverage(n, k + 1) >= CONFIDENCE:
        k += 1
    return Interval(median, xs[k - 1], xs[n - k], order_coverage(n, k), n)


def median_ci(values: Sequence[float], **_: object) -> tuple[float, float, float]:
    """(median, low, high) of :func:`median_interval` (the interval plots and tables draw)."""
    interval = median_interval(values)
    return interval.median, interval.low, interval.high


def coverage_text(n: int) -> str:
    """E.g. ``93.75 %`` for the interval drawn from *n* trials."""
    return f"{100 * median_interval(range(n)).coverage:.4g} %" if n >= 2 else "none (n < 2)"


# --- B against A -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """B against A on one metric, in that metric's own direction."""

    ratio: float  # B / A: geometric mean of per-round ratios (paired) or of the trials
    low: float | None  # 95 % CI of the ratio (None: the noise could not be estimated)
    high: float | None
    p_value: float | None  # two-sided t-test on the log values
    n_a: int
    n_b: int
    paired: bool = False
    higher_is_better: bool = False  # req/s: True; µs/request, latency: False
    unit: str = ""
    detectable_percent: float | None = None  # minimum detectable difference (95 %, 80 % power)
    trials_needed: int | None = None  # rounds (paired) or trials per side to resolve the margin
    margin_percent: float = MARGIN_PERCENT
    note: str = ""  # why there is no interval
    design: str = ""  # how the pairs were made, when not rounds (e.g. "co-scheduled, 24 windows")
    equivalence_p: float | None = None  # TOST p-value of "within ±margin" (two one-sided t-tests)
    decided: bool | None = None
    """None: decide by this comparison's own 95 % CI; True/False: a multiplicity rule over
    the family of comparisons (``holm``, ``false_discoveries``) allowed or withheld this
    comparison's claim."""
    rule: str = ""  # that rule, as the verdict names it when it withholds a claim
    log_se: float | None = None  # standard error of the mean log ratio (None: no spread)
    df: float | None = None  # its degrees of freedom

    @property
    def claim(self) -> str | None:
        """What this comparison's own 95 % CI would say: "different", "equivalent" or None."""
        if self.low is None or self.high is None:
            return None
        if not self.low <= 1 <= self.high:
            return "different"
        m = self.margin_percent / 100
        if 1 - m <= self.low <= self.high <= 1 + m:
            return "equivalent"
        return None

    @property
    def claim_p(self) -> float | None:
        """The p-value behind :attr:`claim` (t-test, or TOST for equivalence)."""
        if self.claim == "different":
            return self.p_value
        if self.claim == "equivalent":
            return self.equivalence_p
        return None

    @property
    def significant(self) -> bool:
        return self.claim == "different" and self.decided is not False

    @property
    def equivalent(self) -> bool:
        """The whole CI lies within ±margin: no difference that large."""
        return self.claim == "equivalent" and self.decided is not False

    @property
    def change_percent(self) -> float:
        """Change of B against A in the metric (req/s: + means more requests per second)."""
        return 100 * (self.ratio - 1)

    @property
    def better(self) -> bool:
        return self.ratio > 1 if self.higher_is_better else self.ratio < 1

    @property
    def regression_percent(self) -> float:
        """How much worse B is, in percent of the metric (negative when B is better)."""
        return -self.change_percent if self.higher_is_better else self.change_percent

    def chained(self, other: Comparison, design: str) -> Comparison:
        """C against A from this (B against A) and *other* (C against B), two independent
        estimates: log ratios added, variances added, Welch–Satterthwaite degrees of freedom."""
        bare = replace(
            self, ratio=self.ratio * other.ratio, low=None, high=None, p_value=None,
            equivalence_p=None, detectable_percent=None, trials_needed=None, decided=None,
            log_se=None, df=None, design=design, note="",
        )  # fmt: skip
        if None in (self.log_se, self.df, other.log_se, other.df):
            return replace(bare, note="a link of the chain has no spread")
        va, vb = (self.log_se or 0.0) ** 2, (other.log_se or 0.0) ** 2
        se = math.sqrt(va + vb)
        df = (va + vb) ** 2 / (va**2 / (self.df or 1.0) + vb**2 / (other.df or 1.0))
        n = min(self.n_a, other.n_a)
        return _with_interval(bare, math.log(bare.ratio), se, df, se * math.sqrt(n))

    def inverted(self) -> Comparison:
        """A against B: the same evidence, ratio and interval turned around."""
        return replace(
            self, ratio=1 / self.ratio,
            low=1 / self.high if self.high is not None else None,
            high=1 / self.low if self.low is not None else None,
        )  # fmt: skip

    def _how(self) -> str:
        if self.design:
            return self.design
        return (
            f"paired by round, n={self.n_a}"
            if self.paired
            else f"unpaired, n={self.n_a}/{self.n_b}"
        )

    def verdict(self) -> str:
        """E.g. ``2.40x faster (+140 % req/s, CI +131…+149 %; paired by round, n=5; …)``."""
        unit = f" {self.unit}" if self.unit else ""
        detail = f"{_signed(self.change_percent)} %{unit}"
        if self.low is not None and self.high is not None:
            detail += f", CI {_signed(100 * (self.low - 1))}…{_signed(100 * (self.high - 1))} %"
        detail += f"; {self._how()}"
        if self.detectable_percent is not None:
            detail += f"; min. detectable {_percent(self.detectable_percent)}"
        if self.significant:
            factor = self.ratio if self.ratio >= 1 else 1 / self.ratio
            word = "faster" if self.better else "slower"
            return f"{factor:.2f}x {word} ({detail})"
        if self.equivalent:
            return f"no difference within ±{self.margin_percent:g} % ({detail})"
        if self.claim is not None and self.decided is False:
            why = f"held back by {self.rule or 'the Holm correction'} over this run's comparisons"
        elif self.note:
            why = self.note
        elif self.trials_needed is None:
            why = f">{MAX_TRIALS} trials would resolve a {self.margin_percent:g} % difference"
        else:
            each = "window pairs" if self.design else "rounds" if self.paired else "trials per side"
            why = (
                f"~{self.trials_needed} {each} would resolve a {self.margin_percent:g} % difference"
            )
        return f"not resolved by this run ({detail}; {why})"


def _signed(value: float) -> str:
    """Whole percent, one decimal below 1, "0" for what rounds to zero (never "−0")."""
    if abs(value) < 0.05:
        return "0"
    return (f"{value:+.1f}" if abs(value) < 0.95 else f"{value:+.0f}").replace("-", "−")


def signed_percent(value: float) -> str:
    """E.g. ``+12 %``, ``−0.4 %``, ``0 %``: a change in percent as every table prints it."""
    return f"{_signed(value)} %"


def _percent(value: float) -> str:
    return f"{value:.2g} %" if value < 10 else f"{value:.0f} %"


def _t(q: float, df: float) -> float:
    return float(stats.t.ppf(q, df))


def _detectable(se: float, df: float) -> float:
    """Minimum detectable change in percent for a log-scale standard error *se*."""
    return 100 * math.expm1((_t(1 - (1 - CONFIDENCE) / 2, df) + _t(POWER, df)) * se)


def trials_to_resolve(
    sd: float, *, paired: bool, margin_percent: float = MARGIN_PERCENT
) -> int | None:
    """Rounds (paired; *sd* of the log ratios) or trials per side (unpaired; *sd* the root of
    the two sides' summed log variances) for a minimum detectable change of *margin_percent*.
    """
    if sd <= 0:
        return 2
    for n in range(2, MAX_TRIALS + 1):
        df = n - 1 if paired else 2 * n - 2
        if _detectable(sd / math.sqrt(n), df) <= margin_percent:
            return n
    return None


def detectable_percent(log_sd: float, n: int, *, paired: bool) -> float | None:
    """Minimum detectable change of a comparison of *n* rounds (or trials per side) whose log
    values (or, paired, log ratios) spread by *log_sd* — a series against its like when unpaired.
    """
    if n < 2 or not log_sd > 0:
        return None
    if paired:
        return _detectable(log_sd / math.sqrt(n), n - 1)
    return _detectable(log_sd * math.sqrt(2 / n), 2 * n - 2)


def _logs(values: Sequence[float]) -> list[float]:
    if any(v <= 0 for v in values):
        raise ValueError("values must be positive")
    return [math.log(v) for v in values]


def compare(
    a: Sequence[float],
    b: Sequence[float],
    *,
    higher_is_better: bool = False,
    unit: str = "",
    margin_percent: float = MARGIN_PERCENT,
) -> Comparison:
    """B against A from unpaired trials (each side ≥ 1 value, all > 0)."""
    if not a or not b:
        raise ValueError("both samples need at least one value")
    la, lb = _logs(a), _logs(b)
    na, nb = len(la), len(lb)
    diff = statistics.fmean(lb) - statistics.fmean(la)
    bare = Comparison(
        math.exp(diff), None, None, None, na, nb, higher_is_better=higher_is_better,
        unit=unit, margin_percent=margin_percent,
    )  # fmt: skip
    if na < 2 or nb < 2:
        return replace(bare, note="n=1 on a side: no spread to judge by")
    va, vb = statistics.variance(la), statistics.variance(lb)
    if va == 0 and vb == 0:
        return replace(bare, note="identical values on each side: no noise measured")
    se = math.sqrt(va / na + vb / nb)
    df = se**4 / ((va / na) ** 2 / (na - 1) + (vb / nb) ** 2 / (nb - 1))
    return _with_interval(bare, diff, se, df, math.sqrt(va + vb))


def compare_paired(
    pairs: Sequence[tuple[float, float]],
    *,
    higher_is_better: bool = False,
    unit: str = "",
    margin_percent: float = MARGIN_PERCENT,
) -> Comparison:
    """B against A from (a, b) pairs measured in the same round (all values > 0)."""
    if not pairs:
        raise ValueError("no pairs")
    logs = [math.log(b / a) for a, b in pairs if a > 0 < b]
    if len(logs) < len(pairs):
        raise ValueError("values must be positive")
    n = len(logs)
    mean = statistics.fmean(logs)
    bare = Comparison(
        math.exp(mean), None, None, None, n, n, paired=True, higher_is_better=higher_is_better,
        unit=unit, margin_percent=margin_percent,
    )  # fmt: skip
    if n < 2:
        return replace(bare, note="one round: no spread to judge by")
    sd = statistics.stdev(logs)
    if sd == 0:
        return replace(bare, note="the same ratio in every round: no noise measured")
    return _with_interval(bare, mean, sd / math.sqrt(n), n - 1, sd)


def _with_interval(bare: Comparison, diff: float, se: float, df: float, sd: float) -> Comparison:
    """*bare* with the t-interval of the log ratio *diff* (standard error *se*)."""
    half = _t(1 - (1 - CONFIDENCE) / 2, df) * se
    m = bare.margin_percent / 100
    tost = max(  # both one-sided nulls "below −m" and "above +m" must be rejected
        float(stats.t.sf((diff - math.log(1 - m)) / se, df)),
        float(stats.t.cdf((diff - math.log(1 + m)) / se, df)),
    )
    return replace(
        bare,
        low=math.exp(diff - half),
        high=math.exp(diff + half),
        p_value=float(2 * stats.t.sf(abs(diff) / se, df)),
        equivalence_p=tost,
        log_se=se,
        df=df,
        detectable_percent=_detectable(se, df),
        trials_needed=trials_to_resolve(sd, paired=bare.paired, margin_percent=bare.margin_percent),
    )


def _family_p(c: Comparison) -> float | None:
    """The p-value a comparison enters a family with: its claim's, else the smaller of its
    two tests' (at most one of "no difference" and "within ±margin" can be a true null, so
    either test rejecting falsely is this comparison's one chance of a false claim)."""
    if c.claim_p is not None:
        return c.claim_p
    tests = [x for x in (c.p_value, c.equivalence_p) if x is not None]
    return min(tests) if tests else None


def holm(comparisons: Sequence[Comparison], alpha: float = 1 - CONFIDENCE) -> list[Comparison]:
    """*comparisons* with ``decided`` set by Holm's step-down rule over their claims.

    Every comparison with an interval enters the family (its claim's p-value, or its
    smaller test p-value when it has no claim); claims are allowed in order of p-value while
    ``p ≤ alpha / (m − rank)``, so the chance of any false claim in the family stays
    ≤ *alpha*. A comparison with no claim stays unresolved.
    """
    family = {i: p for i, c in enumerate(comparisons) if (p := _family_p(c)) is not None}
    ranked = sorted(family, key=family.__getitem__)
    m = len(ranked)
    allowed: set[int] = set()
    for rank, i in enumerate(ranked):
        if family[i] > alpha / (m - rank):
            break
        allowed.add(i)
    return [
        replace(c, decided=i in allowed) if c.claim_p is not None else c
        for i, c in enumerate(comparisons)
    ]


FDR_RULE = "the Benjamini–Hochberg rule (5 % false claims expected)"


def false_discoveries(
    comparisons: Sequence[Comparison],
    looks: Sequence[int] | None = None,
    alpha: float = 1 - CONFIDENCE,
) -> list[Comparison]:
    """*comparisons* with ``decided`` set by the Benjamini–Hochberg step-up rule over their
    claims: of the claims it allows, at most a share *alpha* are expected to be false. The
    family is every comparison with an interval (as in :func:`holm`).

    A comparison that was looked at several times, more windows being measured while it was
    unresolved (*looks*, one per comparison; default 1), enters with its claim's p-value
    multiplied by its looks (Bonferroni over looks), so stopping once it looked resolved
    cannot inflate its error rate.
    """
    seen = list(looks) if looks is not None else [1] * len(comparisons)
    adjusted = {
        i: min(1.0, p * max(1, seen[i]))
        for i, c in enumerate(comparisons)
        if (p := _family_p(c)) is not None
    }
    ranked = sorted(adjusted, key=adjusted.__getitem__)
    m = len(ranked)
    last = -1
    for rank, i in enumerate(ranked):
        if adjusted[i] <= alpha * (rank + 1) / m:
            last = rank
    allowed = set(ranked[: last + 1])
    return [
        replace(c, decided=i in allowed, rule=FDR_RULE) if c.claim_p is not None else c
        for i, c in enumerate(comparisons)
    ]


def lag1_autocorrelation(series: Sequence[Sequence[float]]) -> float | None:
    """Lag-1 autocorrelation pooled over several sequences (each about its own mean)."""
    num = den = 0.0
    for values in series:
        if len(values) < 2:
            continue
        mean = statistics.fmean(values)
        dev = [v - mean for v in values]
        num += sum(a * b for a, b in itertools.pairwise(dev))
        den += sum(d * d for d in dev)
    return num / den if den > 0 else None


def compare_windows(
    groups: Sequence[Sequence[tuple[float, float]]],
    *,
    higher_is_better: bool = False,
    unit: str = "",
    margin_percent: float = MARGIN_PERCENT,
    design: str = "",
) -> Comparison:
    """B against A from window pairs measured at the same instants, in runs of consecutive
    windows (*groups*). Model: the log ratios ``log(b/a)`` of the windows scatter about one
    mean; consecutive windows may be correlated, so the standard error of the mean uses the
    effective number of windows ``n·(1 − ρ)/(1 + ρ)`` with ρ the pooled lag-1
    autocorrelation (only when ρ > 0)."""
    logs = [[math.log(b / a) for a, b in group if a > 0 < b] for group in groups]
    flat = [x for group in logs for x in group]
    if not flat:
        raise ValueError("no window pairs")
    n = len(flat)
    mean = statistics.fmean(flat)
    rho = lag1_autocorrelation(logs)
    n_eff = n * (1 - rho) / (1 + rho) if rho is not None and rho > 0 else float(n)
    n_eff = max(2.0, min(float(n), n_eff)) if n >= 2 else 1.0
    label = design or f"co-scheduled, {n} window pairs"
    if rho is not None and rho > 0:
        label += f", lag-1 ρ {rho:.2f} → n_eff {n_eff:.0f}"
    bare = Comparison(
        math.exp(mean), None, None, None, n, n, paired=True, higher_is_better=higher_is_better,
        unit=unit, margin_percent=margin_percent, design=label,
    )  # fmt: skip
    if n < 2:
        return replace(bare, note="one window: no spread to judge by")
    sd = statistics.stdev(flat)
    if sd == 0:
        return replace(bare, note="the same ratio in every window: no noise measured")
    compared = _with_interval(bare, mean, sd / math.sqrt(n_eff), n_eff - 1, sd)
    needed = compared.trials_needed
    if needed is not None and n_eff < n:  # windows, not independent rounds
        needed = math.ceil(needed * n / n_eff)
    return replace(compared, trials_needed=needed)


def fairness(per_user: Sequence[int], users: int) -> dict[str, float]:
    """How evenly the window's requests went to the *users* clients.

    ``jain`` is Jain's index (1 = every user served equally, 1/n = one user got all);
    users that completed nothing in the window count as zeros.
    """
    counts = [*per_user, *[0] * max(0, users - len(per_user))]
    total = sum(counts)
    squares = sum(c * c for c in counts)
    jain = total * total / (len(counts) * squares) if squares else 0.0
    return {"jain": jain, "min": min(counts, default=0), "max": max(counts, default=0)}
