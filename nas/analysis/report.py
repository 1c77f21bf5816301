"""One self-contained HTML page about a run: ``nas report``. No TensorFlow, no JavaScript
library, no network: inline SVG and a few lines of CSS, so the file opens anywhere and can
be mailed.

The page shows the front (every evaluated candidate, the front joined up, baselines as
diamonds; hovering a point shows its trial, generation, metrics, parameters, FLOPs and
architecture, and the table beside it says the same), the hypervolume after each
generation against the run's fixed reference point, and a drawing of each front member's
architecture, one box per part of its description.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nas.core.objectives import METRICS, hypervolume
from nas.core.signal_quality import signal_quality
from nas.storage.front import Front, compute_front
from nas.storage.records import TrialRecord
from nas.storage.store import RunStore

__all__ = ["hypervolume_by_generation", "write_report"]

_WIDTH, _HEIGHT, _PAD = 640, 400, 56
_COLOURS = ("#2563eb", "#d97706", "#059669", "#db2777", "#7c3aed", "#0891b2")


@dataclass(frozen=True)
class _Axis:
    name: str
    low: float
    high: float
    log: bool

    def position(self, value: float, start: float, length: float) -> float:
        lo, hi, v = self.low, self.high, value
        if self.log:
            lo, hi, v = math.log10(lo), math.log10(hi), math.log10(max(value, 1e-12))
        share = 0.5 if hi == lo else (v - lo) / (hi - lo)
        return start + share * length

    def ticks(self) -> list[float]:
        if self.log:
            first, last = math.floor(math.log10(self.low)), math.ceil(math.log10(self.high))
            return [10.0**k for k in range(first, last + 1) if self.low <= 10.0**k <= self.high]
        if self.name == "generation":  # whole generations only
            step = max(1, math.ceil((self.high - self.low) / 8))
            return [float(g) for g in range(int(self.low), int(self.high) + 1, step)]
        return list(np.linspace(self.low, self.high, 5))


def hypervolume_by_generation(
    trials: Sequence[TrialRecord],
    objectives: Sequence[str],
    reference: dict[str, float],
    chance: Mapping[str, float] | None = None,
) -> list[tuple[int, float]]:
    """(generation, hypervolume of every full-fidelity trial up to it), for each generation."""
    rows = []
    for generation in sorted({t.generation for t in trials}):
        front = compute_front(
            [t for t in trials if t.generation <= generation], objectives, chance=chance
        )
        points = np.array([t.values for t in front.evaluated], dtype=float)
        volume = hypervolume(points, objectives, reference) if len(points) else 0.0
        rows.append((generation, volume))
    return rows


def write_report(run_dir: Path, out: Path | None = None) -> Path:
    """Write the run's report (default ``RUN/report.html``) and return its path."""
    store = RunStore.open(run_dir)
    info = store.info
    trials = store.trials()
    objectives = info.objectives
    front = compute_front(trials, objectives, info.reference, info.chance)
    by_generation = hypervolume_by_generation(trials, objectives, info.reference, info.chance)
    failed = sum(not t.ok for t in trials)
    title = f"{info.name}: {info.space} space, {' vs '.join(objectives)}"
    reference = ", ".join(f"{k} {_number(v)}" for k, v in info.reference.items())
    body = [
        f"<h1>{_e(title)}</h1>",
        f"<p class='summary'>{len(trials)} evaluations ({failed} failed), "
        f"{len(front.members)} on the front, hypervolume <b>{front.hypervolume:.4f}</b> "
        f"(reference point: {_e(reference)}). Run folder: <code>{_e(str(run_dir))}</code>.</p>",
        *(
            [f"<p class='summary'>{_e(quality)}</p>"]
            if (quality := signal_quality(info.experiment))
            else []
        ),
        "<section class='row'>",
        _front_svg(front, objectives),
        _hypervolume_svg(by_generation),
        "</section>",
        "<h2>The front</h2>",
        _front_table(front, objectives),
        "<h2>Architectures of the front</h2>",
        *(_architecture_svg(rank, record) for rank, record in enumerate(front.members, 1)),
    ]
    baselines = sorted({t.baseline for t in trials if t.baseline})
    if baselines:
        body.insert(2, f"<p>Seeded baselines (◆): {_e(', '.join(baselines))}.</p>")
    out = out or run_dir / "report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(_page(title, "\n".join(body)), encoding="utf-8")
    return out


def _front_svg(front: Front, objectives: Sequence[str]) -> str:
    """The first objective (y) against the second (x); hover a point for its details."""
    y_name, x_name = objectives[0], objectives[1] if len(objectives) > 1 else objectives[0]
    points = front.evaluated + front.low_fidelity + front.at_chance
    if not points:
        return "<p>No completed evaluation yet.</p>"
    x_axis = _axis(x_name, [_value(t, x_name) for t in points])
    y_axis = _axis(y_name, [_value(t, y_name) for t in points])
    members = {t.number for t in front.members}
    parts = [_frame(x_axis, y_axis, "Pareto front")]

    def xy(record: TrialRecord) -> tuple[float, float]:
        x = x_axis.position(_value(record, x_name), _PAD, _WIDTH - 2 * _PAD)
        y = y_axis.position(_value(record, y_name), _HEIGHT - _PAD, -(_HEIGHT - 2 * _PAD))
        return x, y

    line = sorted(front.members, key=lambda t: _value(t, x_name))
    if len(line) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in map(xy, line))
        parts.append(f"<polyline class='front' points='{path}'/>")
    for record in sorted(points, key=lambda t: t.number in members):
        x, y = xy(record)
        kind = (
            "member"
            if record.number in members
            else "low"
            if record.low_fidelity
            else "chance"
            if record in front.at_chance
            else "other"
        )
        tip = f"<title>{_e(_tooltip(record, objectives))}</title>"
        if record.baseline:
            size = 7
            diamond = f"{x:.1f},{y - size:.1f} {x + size:.1f},{y:.1f} {x:.1f},{y + size:.1f} {x - size:.1f},{y:.1f}"
            parts.append(
                f"<polygon class='point {kind} baseline' points='{diamond}' "
                f"data-trial='{record.number}'>{tip}</polygon>"
            )
        else:
            radius = 5 if kind == "member" else 3.5
            parts.append(
                f"<circle class='point {kind}' cx='{x:.1f}' cy='{y:.1f}' r='{radius}' "
                f"data-trial='{record.number}'>{tip}</circle>"
            )
    parts.append("</svg>")
    return "\n".join(parts)


def _hypervolume_svg(rows: list[tuple[int, float]]) -> str:
    if not rows:
        return ""
    last = max(1, rows[-1][0])
    top = max(0.05, max(v for _, v in rows) * 1.1)
    x_axis = _Axis("generation", 0, last, False)
    y_axis = _Axis("hypervolume", 0.0, top, False)
    parts = [_frame(x_axis, y_axis, "Hypervolume after each generation")]
    coords = [
        (
            x_axis.position(g, _PAD, _WIDTH - 2 * _PAD),
            y_axis.position(v, _HEIGHT - _PAD, -(_HEIGHT - 2 * _PAD)),
            g,
            v,
        )
        for g, v in rows
    ]
    parts.append(
        "<polyline class='hv' points='"
        + " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in coords)
        + "'/>"
    )
    for x, y, g, v in coords:
        parts.append(
            f"<circle class='hvpoint' cx='{x:.1f}' cy='{y:.1f}' r='3'>"
            f"<title>generation {g}: {v:.4f}</title></circle>"
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _frame(x_axis: _Axis, y_axis: _Axis, title: str) -> str:
    """An SVG with its title, axes, ticks and labels (left open: the caller closes it)."""
    inner_w, inner_h = _WIDTH - 2 * _PAD, _HEIGHT - 2 * _PAD
    parts = [
        f"<svg class='chart' viewBox='0 0 {_WIDTH} {_HEIGHT}' width='{_WIDTH}' height='{_HEIGHT}' "
        f"role='img' aria-label='{_e(title)}'>",
        f"<text class='title' x='{_WIDTH / 2}' y='22'>{_e(title)}</text>",
        f"<rect class='plot' x='{_PAD}' y='{_PAD}' width='{inner_w}' height='{inner_h}'/>",
    ]
    for tick in x_axis.ticks():
        x = x_axis.position(tick, _PAD, inner_w)
        parts.append(
            f"<line class='grid' x1='{x:.1f}' x2='{x:.1f}' y1='{_PAD}' y2='{_HEIGHT - _PAD}'/>"
        )
        parts.append(
            f"<text class='tick' x='{x:.1f}' y='{_HEIGHT - _PAD + 16}'>{_tick(tick)}</text>"
        )
    for tick in y_axis.ticks():
        y = y_axis.position(tick, _HEIGHT - _PAD, -inner_h)
        parts.append(
            f"<line class='grid' x1='{_PAD}' x2='{_WIDTH - _PAD}' y1='{y:.1f}' y2='{y:.1f}'/>"
        )
        parts.append(f"<text class='tick y' x='{_PAD - 6}' y='{y + 4:.1f}'>{_tick(tick)}</text>")
    parts.append(
        f"<text class='label' x='{_WIDTH / 2}' y='{_HEIGHT - 14}'>{_e(_axis_label(x_axis))}</text>"
    )
    parts.append(
        f"<text class='label' transform='translate(12 {_HEIGHT / 2}) rotate(-90)'>"
        f"{_e(_axis_label(y_axis))}</text>"
    )
    return "\n".join(parts)


def _front_table(front: Front, objectives: Sequence[str]) -> str:
    columns = [*objectives, *(m for m in ("params", "flops") if m not in objectives)]
    head = "".join(f"<th>{_e(c)}</th>" for c in ("rank", "trial", "gen", *columns, "architecture"))
    rows = []
    for rank, record in enumerate(front.members, 1):
        cells = [
            str(rank),
            str(record.number),
            str(record.generation),
            *(_number(record.metrics[c]) if c in record.metrics else "–" for c in columns),
        ]
        mark = " ◆ " + _e(record.baseline) if record.baseline else ""
        rows.append(
            f"<tr data-trial='{record.number}'>"
            + "".join(f"<td>{_e(c)}</td>" for c in cells)
            + f"<td class='arch'><code>{_e(record.description)}</code>{mark}</td></tr>"
        )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _architecture_svg(rank: int, record: TrialRecord) -> str:
    """One box per part of the description (stem, stages or levels, head, training),
    as wide as its text, in a row: the order data flows through the net."""
    parts = record.description.split(" | ")
    widths = [max(60, 7 * len(p) + 16) for p in parts]
    total = sum(widths) + 24 * (len(parts) - 1) + 20
    height = 64
    items = []
    x = 10
    for i, (part, width) in enumerate(zip(parts, widths, strict=True)):
        colour = _COLOURS[i % len(_COLOURS)]
        items.append(
            f"<rect x='{x}' y='14' width='{width}' height='34' rx='6' fill='{colour}22' "
            f"stroke='{colour}'/><text class='box' x='{x + width / 2}' y='36'>{_e(part)}</text>"
        )
        if i < len(parts) - 1:
            items.append(
                f"<line class='arrow' x1='{x + width + 2}' y1='31' x2='{x + width + 20}' y2='31' "
                "marker-end='url(#head)'/>"
            )
        x += width + 24
    label = f"#{rank} trial {record.number}" + (f" ◆ {record.baseline}" if record.baseline else "")
    return (
        f"<figure class='arch' data-trial='{record.number}'><figcaption>{_e(label)}</figcaption>"
        f"<svg viewBox='0 0 {total} {height}' width='{total}' height='{height}'>"
        "<defs><marker id='head' markerWidth='8' markerHeight='8' refX='6' refY='3' "
        "orient='auto'><path d='M0,0 L6,3 L0,6 z' fill='#555'/></marker></defs>"
        + "".join(items)
        + "</svg></figure>"
    )


def _axis(name: str, values: list[float]) -> _Axis:
    metric = METRICS.get(name)
    log = bool(metric and metric.log_scale) and min(values) > 0
    low, high = min(values), max(values)
    if log:
        return _Axis(name, low / 1.5, high * 1.5, True)
    span = (high - low) or max(abs(high), 1.0) * 0.1
    return _Axis(name, low - 0.08 * span, high + 0.08 * span, False)


def _axis_label(axis: _Axis) -> str:
    metric = METRICS.get(axis.name)
    arrow = (
        ""
        if metric is None
        else (" (higher is better)" if metric.weight > 0 else " (lower is better)")
    )
    return f"{axis.name}{' (log scale)' if axis.log else ''}{arrow}"


def _value(record: TrialRecord, name: str) -> float:
    return float(record.metrics.get(name, math.nan))


def _tooltip(record: TrialRecord, objectives: Sequence[str]) -> str:
    names = [*objectives, *(m for m in ("params", "flops") if m not in objectives)]
    metrics = ", ".join(f"{n} {_number(record.metrics[n])}" for n in names if n in record.metrics)
    extra = f" ◆ baseline {record.baseline}" if record.baseline else ""
    rung = " (low fidelity)" if record.low_fidelity else ""
    return (
        f"trial {record.number}, generation {record.generation}{extra}{rung}\n{metrics}\n"
        f"{record.description}"
    )


def _tick(value: float) -> str:
    """A short axis label: 3 significant digits below 1,000."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _number(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def _e(text: str) -> str:
    return html.escape(str(text), quote=True)


def _page(title: str, body: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 24px; color: #1f2937; }}
h1 {{ font-size: 20px; }} h2 {{ font-size: 16px; margin-top: 28px; }}
.row {{ display: flex; flex-wrap: wrap; gap: 16px; }}
.chart {{ background: #fff; border: 1px solid #e5e7eb; border-radius: 8px; }}
.chart .title {{ font-weight: 600; text-anchor: middle; }}
.chart .plot {{ fill: #fafafa; stroke: #d1d5db; }}
.chart .grid {{ stroke: #eee; }}
.chart .tick {{ font-size: 11px; text-anchor: middle; fill: #6b7280; }}
.chart .tick.y {{ text-anchor: end; }}
.chart .label {{ font-size: 12px; text-anchor: middle; fill: #374151; }}
.point.other {{ fill: #9ca3af; opacity: .7; }}
.point.low {{ fill: none; stroke: #9ca3af; }}
.point.chance {{ fill: #d1d5db; stroke: #6b7280; }}
.point.member {{ fill: #2563eb; stroke: #1e3a8a; }}
.point.baseline {{ fill: #f59e0b; stroke: #92400e; }}
.point:hover {{ stroke: #111; stroke-width: 2; }}
.front {{ fill: none; stroke: #2563eb; stroke-width: 1.5; }}
.hv {{ fill: none; stroke: #059669; stroke-width: 2; }} .hvpoint {{ fill: #059669; }}
table {{ border-collapse: collapse; margin-top: 8px; }}
th, td {{ border-bottom: 1px solid #e5e7eb; padding: 4px 8px; text-align: right; }}
td.arch {{ text-align: left; }} th {{ background: #f3f4f6; }}
figure.arch {{ margin: 10px 0; overflow-x: auto; }}
figure.arch figcaption {{ font-weight: 600; }}
.box {{ font: 12px ui-monospace, monospace; text-anchor: middle; }}
.arrow {{ stroke: #555; stroke-width: 1.5; }}
</style></head>
<body>
{body}
</body></html>
"""
