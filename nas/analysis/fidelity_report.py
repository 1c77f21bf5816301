"""The fidelity benchmark's report: each signal at each fidelity against the truth.

Reads what :mod:`nas.engine.fidelity` measured (``panel.json``, ``truths.jsonl``,
``signals.jsonl``) and writes ``fidelity.json``, ``fidelity.md`` and ``fidelity.png``
(signal against truth, one panel per fidelity). Every figure is over the members that
have both a truth and the signal; the number of them is in every row, so a benchmark
still running reports honestly what it has.

Per signal and fidelity: Kendall's tau and Spearman's rho with the truth (the signal
averaged over its seeds, and its first seed alone: what a search with one evaluation per
candidate sees), the top-5 overlap, the regret of picking the signal's best, the
signal's own seed-to-seed tau, the median CPU-seconds per candidate and, as "of truth", the median member's signal CPU-seconds over its truth's. The truth is
averaged over its seeds where a member has two; their tau is the truth's own noise.
A signal scored at a quarter, half and all of its budget also gives ``SIGNAL+curve``:
its learning curve extrapolated to the truth's images, at no extra training.
Each trained signal also gives ``SIGNAL+surrogate``: every member's score predicted,
leave one out, by the ridge surrogate of ``[search] prescreen_by = "surrogate"``
(:mod:`nas.strategies.surrogate`) fitted on the other members' scores, i.e. what a
search's surrogate would make of a net it has not trained; and ``SIGNAL+blend``, the mean
of a member's own score rank and that prediction (a measurement shrunk towards what
similar nets scored); ``SIGNAL+size``, the truth predicted, leave one out, by a line in the
score and the log parameter count; and ``SIGNAL+flops``, the mean of a member's rank by the
score and its rank by FLOPs (nothing fitted: ``[final] choose_by = "score+flops"``). Two
free signals stand beside the trained ones: the parameter count and the FLOPs (zero-cost
proxies such as ZiCo were found mostly no better than the parameter count).
"""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nas.core.files import write_atomically
from nas.core.learning_curve import extrapolate
from nas.core.objectives import CHANCE_MARGIN
from nas.core.ranking import kendall_tau, rank_average, regret, spearman_rho, top_k_overlap
from nas.engine.fidelity import BenchmarkPlan, PanelMember, load_panel, measured_rows, panel_chance
from nas.strategies.surrogate import Surrogate, genome_features, rank_targets

__all__ = [
    "FidelityReport",
    "flops_ranked_signal",
    "member_features",
    "race_rows",
    "signal_table",
    "surrogate_signals",
    "write_report",
]

TOP_K = 5


@dataclass(frozen=True)
class FidelityReport:
    """Where the report went, and its table as Markdown."""

    json_file: Path
    figure: Path
    table: str
    rows: list[dict[str, Any]]


def _truths(truth_rows: list[dict[str, Any]]) -> tuple[dict[str, float], dict[str, list[float]]]:
    by_member: dict[str, list[float]] = defaultdict(list)
    for row in sorted(truth_rows, key=lambda r: r["seed"]):
        by_member[row["genome_hash"]].append(float(row["accuracy"]))
    return {k: float(np.mean(v)) for k, v in by_member.items()}, dict(by_member)


SCORE_SIGNALS: dict[str, tuple[str, float]] = {
    "loglik": ("log_likelihood", 1.0),
    "tse": ("train_loss", -1.0),
    "tse_late": ("train_loss_late", -1.0),
}
"""``SIGNAL+NAME`` -> (the score kept in a signal row's ``scores``, its sign so that higher
ranks higher): the validation log-likelihood and the training losses of the same
training, at its last image count and at no extra cost."""


Measured = tuple[float, ...]
"""A signal's (score, CPU-seconds, share of its truth's CPU-seconds on the same kind of
machine, NaN where none was timed there)."""


def _signal_values(
    signal_rows: list[dict[str, Any]],
    target: float = 0.0,
    *,
    scores: bool = True,
    truth_cpu: dict[tuple[str, str], float] | None = None,
) -> dict[tuple[str, int], dict[str, dict[int, Measured]]]:
    """(signal, images) -> member hash -> seed -> (score, CPU-seconds, share of the truth's
    CPU-seconds, from ``truth_cpu``: :func:`_truth_cpu_by_machine`).

    With ``target`` (the truth's images), each signal scored at three points of one
    training (n/4, n/2, n; or a one-run signal's n/4, n/2, n) also gives ``SIGNAL+curve``
    at n: its learning curve extrapolated to ``target`` (:mod:`nas.core.learning_curve`), at
    the same cost. With ``scores``, a row that kept other scores of its training also
    gives ``SIGNAL+loglik``, ``SIGNAL+tse`` and ``SIGNAL+tse_late`` (:data:`SCORE_SIGNALS`)
    at its last image count."""
    out: dict[tuple[str, int], dict[str, dict[int, Measured]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    for row in signal_rows:
        images, scores_at = row["images"], row["accuracy"]
        truth_seconds = (truth_cpu or {}).get(
            (str(row["genome_hash"]), str(row.get("machine", ""))), math.nan
        )

        kept = (row.get("scores") or {}) if scores else {}
        for suffix, (name, sign) in SCORE_SIGNALS.items():
            if isinstance(kept.get(name), int | float) and math.isfinite(kept[name]):
                n = int(images[-1])
                out[(f"{row['signal']}+{suffix}", n)][row["genome_hash"]][int(row["seed"])] = (
                    _measured(row, n, sign * float(kept[name]), truth_seconds)
                )
        if target:
            for n, points in _curves(row):
                predicted = extrapolate(points, target)
                out[(f"{row['signal']}+curve", n)][row["genome_hash"]][int(row["seed"])] = (
                    _measured(row, n, predicted, truth_seconds)
                )
        for n, score in zip(images, scores_at, strict=True):
            out[(row["signal"], int(n))][row["genome_hash"]][int(row["seed"])] = _measured(
                row, int(n), float(score), truth_seconds
            )
    return out


def _measured(row: dict[str, Any], n: int, score: float, truth_seconds: float) -> Measured:
    cost = _cost_at(row, n)
    return (score, cost, cost / truth_seconds)


def _curves(row: dict[str, Any]) -> list[tuple[int, list[tuple[float, float]]]]:
    """(n, three (images, score) points ending at n) for each n of ``row`` that has them."""
    scored = {int(n): float(a) for n, a in zip(row["images"], row["accuracy"], strict=True)}
    scored |= {int(n): float(a) for n, a in (row.get("curve") or {}).items()}
    out = []
    for n in row["images"]:
        points = [(m, scored[m]) for m in (n // 4, n // 2, n) if m in scored]
        if len(points) == 3:
            out.append((int(n), points))
    return out


def _cost_at(row: dict[str, Any], n: int) -> float:
    images = row["images"]
    cpu = row.get("cpu_at") or []
    index = images.index(n)
    if len(images) == 1:
        return float(row["cpu_seconds"])
    if index < len(cpu):
        return float(cpu[index])
    return float(row["cpu_seconds"]) * n / images[-1]


def _row(
    name: str,
    images: int,
    values: dict[str, dict[int, tuple[float, ...]]],
    truth: dict[str, float],
    chance: float | None = None,
) -> dict[str, Any] | None:
    members = [h for h in truth if h in values]
    if len(members) < 3:
        return None
    truths = [truth[h] for h in members]
    mean = [float(np.mean([v[0] for v in values[h].values()])) for h in members]
    first = [values[h][min(values[h])][0] for h in members]
    paired = [h for h in members if len(values[h]) >= 2]
    seeds = sorted({s for h in paired for s in values[h]})[:2]
    seed_tau = (
        kendall_tau(
            [values[h][seeds[0]][0] for h in paired], [values[h][seeds[1]][0] for h in paired]
        )
        if len(paired) >= 3
        and len(seeds) == 2
        and all(s in values[h] for h in paired for s in seeds)
        else math.nan
    )
    cpu = [statistics.median(v[1] for v in values[h].values()) for h in members]
    shares = [
        statistics.median(known)
        for h in members
        if (known := [v[2] for v in values[h].values() if len(v) > 2 and math.isfinite(v[2])])
    ]
    every = [v[0] for h in values for v in values[h].values()]
    at_chance = (
        sum(score <= chance + CHANCE_MARGIN + 1e-9 for score in every) / len(every)
        if chance is not None and every
        else math.nan
    )
    return {
        "signal": name,
        "images": images,
        "members": len(members),
        "tau": kendall_tau(mean, truths),
        "rho": spearman_rho(mean, truths),
        "tau_one_seed": kendall_tau(first, truths),
        "top5_overlap": top_k_overlap(mean, truths, TOP_K),
        "regret": regret(mean, truths),
        "regret_one_seed": regret(first, truths),
        "seed_tau": seed_tau,
        "cpu_seconds": float(statistics.median(cpu)),
        "cost_share": float(statistics.median(shares)) if shares else math.nan,
        "at_chance": at_chance,
    }


RACE_SIZES: tuple[int, ...] = (2, 4)
"""How many of the signal's best race on in the report's race rows."""


def race_rows(
    name: str,
    values: dict[tuple[str, int], dict[str, dict[int, tuple[float, ...]]]],
    truth: dict[str, float],
) -> list[dict[str, Any]]:
    """What racing buys (``[final] race``, successive halving before the final training):
    for each fidelity n of signal ``name`` that was also measured at 2n, the best K by the
    signal at n go on to 2n and the best of them there is the pick. One row per n and K:
    the pick's regret, and the CPU-seconds per panel member (every member at n, K of
    them again up to 2n)."""
    rows = []
    fidelities = sorted(n for (signal, n) in values if signal == name)
    for n in fidelities:
        if (name, 2 * n) not in values:
            continue
        low, high = values[(name, n)], values[(name, 2 * n)]
        members = [h for h in truth if h in low and h in high]
        if len(members) < 3:
            continue

        def mean(table: dict[str, dict[int, tuple[float, ...]]], h: str, part: int = 0) -> float:
            return float(np.mean([v[part] for v in table[h].values()]))

        order = sorted(members, key=lambda h: -mean(low, h))
        best = max(truth[h] for h in members)
        base = float(np.median([mean(low, h, 1) for h in members]))
        extra = float(np.median([mean(high, h, 1) - mean(low, h, 1) for h in members]))
        for k in RACE_SIZES:
            if k >= len(members):
                continue
            pick = max(order[:k], key=lambda h: mean(high, h))
            rows.append(
                {
                    "signal": f"{name} race{k}",
                    "images": n,
                    "members": len(members),
                    "regret": best - truth[pick],
                    "cpu_seconds": base + k * max(0.0, extra) / len(members),
                }
            )
    return rows


def member_features(member: PanelMember) -> dict[str, float]:
    """What the surrogate sees of a panel member: its genome's features and its size."""
    features = genome_features(member.genome)
    features["log_params"] = math.log10(max(member.params, 1))
    features["log_flops"] = math.log10(max(member.flops, 1))
    return features


def _median_cost(seeds: dict[int, tuple[float, ...]]) -> tuple[float, float]:
    """A member's median CPU-seconds over its seeds, and its median share of its truth's
    (NaN where none is known)."""
    shares = [v[2] for v in seeds.values() if len(v) > 2 and math.isfinite(v[2])]
    return (
        float(statistics.median(v[1] for v in seeds.values())),
        float(statistics.median(shares)) if shares else math.nan,
    )


def surrogate_signals(
    values: dict[str, dict[int, tuple[float, ...]]], panel: dict[str, PanelMember]
) -> dict[str, dict[str, dict[int, tuple[float, ...]]]]:
    """``surrogate`` and ``blend`` tables for one signal at one fidelity (member hash ->
    {0: (value, CPU-seconds)}): each member's seed-averaged score predicted, leave one
    out, by a ridge surrogate on the others' ranks, and the mean of that prediction and
    the member's own rank. Empty with fewer than 6 members."""
    members = [h for h in values if h in panel]
    if len(members) < 6:
        return {}
    scores = [float(np.mean([v[0] for v in values[h].values()])) for h in members]
    cost = {h: _median_cost(values[h]) for h in members}
    ranks = rank_targets(scores, 1.0)
    rows = [member_features(panel[h]) for h in members]
    predicted = {}
    for i, h in enumerate(members):
        others = [j for j in range(len(members)) if j != i]
        model = Surrogate.fit(
            [rows[j] for j in others], rank_targets([scores[j] for j in others], 1.0)
        )
        predicted[h] = float(model.predict([rows[i]])[0])
    return {
        "surrogate": {h: {0: (predicted[h], *cost[h])} for h in members},
        "blend": {
            h: {0: (0.5 * (predicted[h] + ranks[i]), *cost[h])} for i, h in enumerate(members)
        },
    }


def size_corrected_signal(
    values: dict[str, dict[int, tuple[float, ...]]],
    panel: dict[str, PanelMember],
    truth: dict[str, float],
) -> dict[str, dict[int, tuple[float, ...]]]:
    """The ``size`` table for one signal at one fidelity (member hash -> {0: (value,
    CPU-seconds)}): each member's truth predicted, leave one out, by a least-squares
    line in its seed-averaged score and its log parameter count, fitted on the other
    members' truths. A brief training favours small nets, which learn first; the line
    learns from the panel how much the size makes up for once trained. Empty with fewer
    than 6 members that have a truth."""
    members = [h for h in values if h in panel and h in truth]
    if len(members) < 6:
        return {}
    features = np.array(
        [
            [
                1.0,
                float(np.mean([v[0] for v in values[h].values()])),
                member_features(panel[h])["log_params"],
            ]
            for h in members
        ]
    )
    target = np.array([truth[h] for h in members])
    out = {}
    for i, h in enumerate(members):
        keep = np.arange(len(members)) != i
        coefficients, *_ = np.linalg.lstsq(features[keep], target[keep], rcond=None)
        out[h] = {0: (float(features[i] @ coefficients), *_median_cost(values[h]))}
    return out


def flops_ranked_signal(
    values: dict[str, dict[int, tuple[float, ...]]], panel: dict[str, PanelMember]
) -> dict[str, dict[int, tuple[float, ...]]]:
    """The ``flops`` table for one signal at one fidelity (member hash -> seed -> (value,
    CPU-seconds)): per seed, each member's mean rank by its score and by its FLOPs among
    the members measured with that seed (:func:`nas.core.ranking.rank_average`), what
    ``[final] choose_by = "score+flops"`` ranks a run's candidates by. Nothing is fitted."""
    out: dict[str, dict[int, tuple[float, ...]]] = defaultdict(dict)
    seeds = sorted({s for h in values if h in panel for s in values[h]})
    for seed in seeds:
        members = [h for h in values if h in panel and seed in values[h]]
        if len(members) < 3:
            continue
        combined = rank_average(
            [values[h][seed][0] for h in members], [float(panel[h].flops) for h in members]
        )
        for h, value in zip(members, combined, strict=True):
            out[h][seed] = (float(value), *values[h][seed][1:])
    return dict(out)


def _truth_cpu_by_machine(truth_rows: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
    """(member hash, kind of machine) -> its truth's CPU-seconds there (the mean over its
    seeds measured on it; rows written before the machine was recorded share the empty
    one). A signal's cost is compared only with a truth timed on its own kind of machine:
    one timed on a slower processor would otherwise look costlier than it is."""
    timed: dict[tuple[str, str], list[float]] = defaultdict(list)
    for row in truth_rows:
        if row.get("cpu_seconds"):
            key = (str(row["genome_hash"]), str(row.get("machine", "")))
            timed[key].append(float(row["cpu_seconds"]))
    return {key: float(np.mean(cpu)) for key, cpu in timed.items()}


def signal_table(
    panel: list[PanelMember],
    truth_rows: list[dict[str, Any]],
    signal_rows: list[dict[str, Any]],
    chance: float | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The report's rows (one per signal and fidelity, plus the free proxies) and the
    truth's own figures (members, seeds, noise). With ``chance`` (the majority rate), each
    accuracy signal's row says what share of all its measurements (every member and
    seed, with a truth or not) ended within :data:`CHANCE_MARGIN` of it."""
    truth, seeds = _truths(truth_rows)
    truth_cpu = _truth_cpu_by_machine(truth_rows)
    rows: list[dict[str, Any]] = []
    target = float(np.median([r["images"] for r in truth_rows if r.get("images")] or [0]))
    measured = _signal_values(signal_rows, target, truth_cpu=truth_cpu)
    for (name, images), values in sorted(measured.items()):
        accuracy_signal = not name.startswith("zico") and not any(
            name.endswith(f"+{suffix}") for suffix in SCORE_SIGNALS
        )
        row = _row(name, images, values, truth, chance if accuracy_signal else None)
        if row is not None:
            rows.append(row)
    by_hash = {m.genome_hash: m for m in panel}
    for (name, images), values in sorted(measured.items()):
        if name.startswith("zico") or "+" in name:
            continue
        tables = surrogate_signals(values, by_hash)
        sized = size_corrected_signal(values, by_hash, truth)
        if sized:
            tables["size"] = sized
        ranked = flops_ranked_signal(values, by_hash)
        if ranked:
            tables["flops"] = ranked
        for kind, table in tables.items():
            row = _row(f"{name}+{kind}", images, table, truth)
            if row is not None:
                rows.append(row)
    for name in sorted({signal for (signal, _) in measured}):
        rows += race_rows(name, measured, truth)
    for proxy in ("params", "flops"):
        values = {m.genome_hash: {0: (float(getattr(m, proxy)), 0.0)} for m in panel}
        row = _row(proxy, 0, values, truth)
        if row is not None:
            rows.append(row)
    twice = [v for v in seeds.values() if len(v) >= 2]
    noise = {
        "members": len(truth),
        "members_two_seeds": len(twice),
        "seed_tau": kendall_tau([v[0] for v in twice], [v[1] for v in twice])
        if len(twice) >= 3
        else math.nan,
        "seed_mean_abs_difference": float(np.mean([abs(v[0] - v[1]) for v in twice]))
        if twice
        else math.nan,
        "best": max(truth.values()) if truth else math.nan,
        "median": float(np.median(list(truth.values()))) if truth else math.nan,
    }
    truth_cpu = [float(r.get("seconds", 0.0)) for r in truth_rows]
    noise["seconds_median"] = float(np.median(truth_cpu)) if truth_cpu else math.nan
    return rows, noise


def _markdown(rows: list[dict[str, Any]], noise: dict[str, Any]) -> str:
    def f(value: float, digits: int = 3) -> str:
        return (
            "—"
            if value is None or (isinstance(value, float) and math.isnan(value))
            else f"{value:.{digits}f}"
        )

    lines = [
        f"Truths: {noise['members']} members ({noise['members_two_seeds']} with two seeds; "
        f"seed-to-seed tau {f(noise['seed_tau'])}, mean |difference| "
        f"{f(noise['seed_mean_abs_difference'], 4)}); best {f(noise['best'], 4)}, median "
        f"{f(noise['median'], 4)}; median {f(noise['seconds_median'] / 60, 1)} min each.",
        "",
        "| signal | images | members | tau | rho | tau (1 seed) | top-5 | regret | regret (1 seed) "
        "| seed tau | at chance | CPU-s | of truth |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['signal']} | {row['images'] or '—'} | {row['members']} | "
            f"{f(row.get('tau'))} | {f(row.get('rho'))} | {f(row.get('tau_one_seed'))} | "
            f"{row.get('top5_overlap', '—')} | {f(row['regret'], 4)} | "
            f"{f(row.get('regret_one_seed'), 4)} | {f(row.get('seed_tau'))} | "
            f"{_share(row.get('at_chance'))} | {f(row['cpu_seconds'], 1)} | "
            f"{_fraction(row.get('cost_share'))} |"
        )
    return "\n".join(lines)


def _fraction(value: float | None) -> str:
    """A cost share as 1/N (the median member's signal CPU over its truth's)."""
    if value is None or math.isnan(value) or value <= 0:
        return "—"
    return f"1/{1 / value:.0f}"


def _share(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.0%}"


def write_report(folder: Path, plan: BenchmarkPlan | None = None) -> FidelityReport:
    """Compute the report from ``folder``'s measurements; write JSON, Markdown and PNG."""
    panel = load_panel(folder)
    truth_rows, signal_rows = measured_rows(folder)
    rows, noise = signal_table(panel, truth_rows, signal_rows, panel_chance(folder))
    table = _markdown(rows, noise)
    document = {"truth": noise, "signals": rows, "panel": len(panel)}
    if plan is not None:
        document["plan"] = {
            "truth_epochs": plan.truth_epochs,
            "fidelities": list(plan.fidelities),
            "signals": list(plan.signals),
        }
    json_file = folder / "fidelity.json"
    write_atomically(json_file, (json.dumps(document, indent=1, default=_plain) + "\n").encode())
    write_atomically(folder / "fidelity.md", (table + "\n").encode())
    figure = folder / "fidelity.png"
    _plot(figure, truth_rows, signal_rows)
    return FidelityReport(json_file, figure, table, rows)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON: {type(value).__name__}")


def _plot(path: Path, truth_rows: list[dict[str, Any]], signal_rows: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    truth, _ = _truths(truth_rows)
    values = _signal_values(signal_rows, scores=False)
    fidelities = sorted({n for (_, n) in values})
    names = sorted({s for (s, _) in values})
    columns = max(1, len(fidelities))
    figure, axes = plt.subplots(1, columns, figsize=(3.2 * columns, 3.4), squeeze=False)
    for axis, images in zip(axes[0], fidelities or [0], strict=False):
        for index, name in enumerate(names):
            measured = values.get((name, images), {})
            members = [h for h in truth if h in measured]
            if not members:
                continue
            x = [float(np.mean([v[0] for v in measured[h].values()])) for h in members]
            y = [truth[h] for h in members]
            axis.scatter(x, y, s=14, label=name, color=f"C{index}")
        axis.set_title(f"{images:,} images" if images else "no signal yet", fontsize=9)
        axis.set_xlabel("signal (its score)", fontsize=8)
        axis.tick_params(labelsize=7)
        if axis.collections:
            axis.legend(fontsize=7)
    axes[0][0].set_ylabel("truth (accuracy after training)", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
