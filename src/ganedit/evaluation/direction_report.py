"""Write a direction comparison (from `evaluate_directions`) as report.json, report.md and plots.

Tables compare methods at matched target change (50% and 90% of samples flipped), because a
longer step drags every attribute further: only equal target change is a fair footing.
The renderer also accepts a report read back from report.json (NaN stored as null).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from ganedit.utils.files import atomic_path, write_json

YAW = "yaw"
DPI = 100
MARKERS = ("o", "s", "^", "D")  # one per matched level, in level order
DEFAULT_TITLE = "Edit direction comparison"


# ---------------------------------------------------------------- public API


def write_direction_report(
    report: dict, out_dir: str | Path, title: str = DEFAULT_TITLE, extra_markdown: str = ""
) -> Path:
    """Write report.json, the PNG plots and report.md into `out_dir`; return report.md's path.

    Every file is written atomically; report.md comes last, so its presence marks a complete
    report.
    """
    if not report.get("directions"):
        raise ValueError("expected a report with at least one direction, got none")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "report.json", json_safe(report))
    images = _write_plots(report, out)
    path = out / "report.md"
    with atomic_path(path) as tmp:
        tmp.write_text(render_markdown(report, title, extra_markdown, images), encoding="utf-8")
    return path


def method_ranking(report: dict, level: str | int | float = "90") -> list[tuple[str, float]]:
    """Methods by mean off-target |delta p| at a matched level, cleanest first.

    The mean skips directions that never reached `level` (NaN). Such a method's mean covers
    fewer attributes and is not comparable, so it is ranked after every complete method.
    """
    key = _level_key(level)
    per_method: dict[str, list[float]] = {}
    for d in report["directions"]:
        per_method.setdefault(d["name"], []).append(_num(d["matched"][key]["off_target"]))
    rows = []
    for name, values in per_method.items():
        mean, n_finite = _finite_mean(values)
        rows.append((n_finite < len(values), math.isnan(mean), mean, name))
    # Stable sort: ties keep the report's order.
    rows.sort(key=lambda r: (r[0], r[1], 0.0 if r[1] else r[2]))
    return [(name, mean) for _, _, mean, name in rows]


def method_tiers(report: dict, level: str | int | float = "90") -> list[dict]:
    """The ranking with its structure spelled out: one row per method, in `method_ranking`
    order, with its tier (1: reached `level` on every target attribute; 2: missed some, so
    its mean covers fewer attributes and is not comparable with tier 1), rank, mean
    off-target change, mean identity cosine, and the attributes it reached and missed."""
    key = _level_key(level)
    rows = []
    for rank, (name, mean) in enumerate(method_ranking(report, key), start=1):
        directions = [d for d in report["directions"] if d["name"] == name]
        reached = [
            d["attribute"] for d in directions if math.isfinite(_num(d["matched"][key]["step"]))
        ]
        missed = [d["attribute"] for d in directions if d["attribute"] not in reached]
        identity, _ = _finite_mean([d["matched"][key]["identity"] for d in directions])
        rows.append(
            {
                "rank": rank,
                "tier": 2 if missed else 1,
                "method": name,
                "off_target": mean,
                "identity": identity,
                "reached": reached,
                "missed": missed,
            }
        )
    return rows


# The rule that picks ganedit's default method (docs/directions.md, "The default method"):
# at 50% matched flips, where edits are used and identity still tells methods apart (at 90%
# every direction on a small generator has lost the face), a direction's figure is what the
# edit keeps, identity cosine minus the mean off-target change: 0.1 of identity cosine costs
# as much as 0.1 of probability moved in the other attributes.
RECOMMEND_LEVEL = "50"


def method_scores(report: dict, level: str | int | float = RECOMMEND_LEVEL) -> list[dict]:
    """Methods by what their edits keep, best first: per method, `kept` = identity cosine -
    off-target change at `level`% matched flips, averaged over the attributes every method
    reached there (like with like), with the mean identity and off-target change behind it,
    each attribute's own figure, and whether the method stands alone (`standalone`: a name
    with '+', such as a projection onto other boundaries, needs those boundaries). Without
    the level, the report's lowest is used."""
    levels = _levels(report)
    key = _level_key(level) if _level_key(level) in levels else levels[0]
    by_method: dict[str, dict[str, tuple[float, float]]] = {}
    for d in report["directions"]:
        m = d["matched"][key]
        figures = (_num(m["identity"]), _num(m["off_target"]))
        if math.isfinite(_num(m["step"])) and all(map(math.isfinite, figures)):
            by_method.setdefault(d["name"], {})[d["attribute"]] = figures
        else:
            by_method.setdefault(d["name"], {})
    common = sorted(set.intersection(*(set(v) for v in by_method.values())) if by_method else [])
    rows = []
    for name, figures in by_method.items():
        kept = {a: figures[a][0] - figures[a][1] for a in figures}
        chosen = [figures[a] for a in common]
        rows.append(
            {
                "method": name,
                "level": key,
                "kept": float(np.mean([i - o for i, o in chosen])) if chosen else float("nan"),
                "identity": float(np.mean([i for i, _ in chosen])) if chosen else float("nan"),
                "off_target": float(np.mean([o for _, o in chosen])) if chosen else float("nan"),
                "attributes": common,
                "per_attribute": kept,
                "standalone": "+" not in name,
            }
        )
    rows.sort(key=lambda r: -r["kept"] if math.isfinite(r["kept"]) else math.inf)
    return rows


def recommended_methods(report: dict, level: str | int | float = RECOMMEND_LEVEL) -> dict:
    """{"default": the standalone method `method_scores` ranks first, "by_attribute":
    {attribute: the method (any) whose edits keep the most on it, None where no method's
    edit keeps more than it loses (kept <= 0)}}."""
    rows = method_scores(report, level)
    standalone = [r["method"] for r in rows if r["standalone"] and math.isfinite(r["kept"])]
    by_attribute: dict[str, tuple[float, str]] = {}
    for r in rows:
        for attribute, kept in r["per_attribute"].items():
            if attribute not in by_attribute or kept > by_attribute[attribute][0]:
                by_attribute[attribute] = (kept, r["method"])
    return {
        "default": standalone[0] if standalone else None,
        "by_attribute": {a: m if k > 0 else None for a, (k, m) in sorted(by_attribute.items())},
    }


def json_safe(value):
    """A copy that strict JSON accepts: NaN/inf -> None, numpy -> Python, tuples -> lists."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        return json_safe(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def render_markdown(
    report: dict,
    title: str = DEFAULT_TITLE,
    extra_markdown: str = "",
    images: list[tuple[str, str]] | None = None,
) -> str:
    """The report.md text; `images` are (alt text, file name) pairs to embed."""
    lines = [f"# {title}", "", _config_line(report), "", _base_share_line(report), ""]
    for level in _levels(report):
        lines += _level_section(report, level)
    lines += _summary_section(report, _levels(report)[-1])
    lines += _recommendation_section(report)
    lines += _cosine_section(report)
    if images:
        lines += ["## Plots", ""]
        lines += [line for alt, name in images for line in (f"![{alt}]({name})", "")]
    text = "\n".join(lines).rstrip("\n") + "\n"
    return text + ("\n" + extra_markdown if extra_markdown else "")


# ---------------------------------------------------------------- report access


def _num(x) -> float:
    """A float with None (JSON null) read as NaN."""
    return float("nan") if x is None else float(x)


def _array(values) -> np.ndarray:
    return np.array(values, dtype=np.float64)  # None -> nan


def _finite_mean(values) -> tuple[float, int]:
    v = _array(values)
    finite = v[np.isfinite(v)]
    return (float(finite.mean()) if len(finite) else float("nan")), len(finite)


def _level_key(level: str | int | float) -> str:
    """'90', 90 and 0.9 all name the 90% level (report keys are percent strings)."""
    if isinstance(level, float) and level < 1:
        return str(round(level * 100))
    return str(level)


def _levels(report: dict) -> list[str]:
    return sorted(report["directions"][0]["matched"], key=float)


def _unique(items) -> list:
    return list(dict.fromkeys(items))


def _targets(report: dict) -> list[str]:
    return _unique(d["attribute"] for d in report["directions"])


def _methods(report: dict) -> list[str]:
    return _unique(d["name"] for d in report["directions"])


def _kinds(report: dict) -> dict[str, str]:
    # Reports written before attribute kinds were recorded: the face world's, yaw the value.
    kinds = report.get("attribute_kinds")
    if kinds:
        return kinds
    return {a: "value" if a == YAW else "probability" for a in report["attributes"]}


def _binary(report: dict) -> list[str]:
    """The probability attributes (flip targets, nuisance columns), in column order."""
    kinds = _kinds(report)
    return [a for a in report["attributes"] if kinds.get(a) == "probability"]


def _values(report: dict) -> list[str]:
    """The value attributes (yaw for the face world), each in its own units."""
    kinds = _kinds(report)
    return [a for a in report["attributes"] if kinds.get(a) == "value"]


def _value_header(name: str) -> str:
    return f"{name} (deg)" if name == YAW else name


def _for_target(report: dict, target: str) -> list[dict]:
    return [d for d in report["directions"] if d["attribute"] == target]


def _label(d: dict) -> str:
    return f"{d['name']}:{d['attribute']}"


# ---------------------------------------------------------------- markdown


def _fmt(x, digits: int = 3) -> str:
    x = _num(x)
    return "n/a" if not math.isfinite(x) else f"{x:.{digits}f}"


def _with_ci(mean, ci, digits: int = 3) -> str:
    """`0.123 [0.101, 0.140]`; the interval is left out when there is none (bootstrap 0)."""
    if ci is None or not math.isfinite(_num(mean)):
        return _fmt(mean, digits)
    return f"{_fmt(mean, digits)} [{_fmt(ci[0], digits)}, {_fmt(ci[1], digits)}]"


def _cell(text) -> str:
    return str(text).replace("|", "\\|")  # a pipe would end the table cell


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    align = ["---"] + ["---:"] * (len(header) - 1)  # numbers right-aligned
    return ["| " + " | ".join(_cell(c) for c in row) + " |" for row in [header, align, *rows]]


def _config_line(report: dict) -> str:
    items = ", ".join(f"{k}={v}" for k, v in report.get("config", {}).items())
    return f"Config: {items}." if items else "Config: not recorded."


def _base_share_line(report: dict) -> str:
    shares = report.get("base_label_share", {})
    items = ", ".join(f"{k} {_fmt(v, 2)}" for k, v in shares.items())
    return f"Positive share of held-out samples (evaluator labels): {items}."


def _level_section(report: dict, level: str) -> list[str]:
    lines = [
        f"## Matched at {level}% target flip rate",
        "",
        "Cells: mean absolute change of each nuisance attribute's probability [95% bootstrap"
        " CI]; step in latent units; value attributes: mean absolute change in their own units"
        " (yaw in degrees); off-target = mean over nuisance probabilities (lowest in bold);"
        " identity = cosine to the unedited embedding (n/a: not measured); AUC ="
        " held-out separability. n/a: the level was never reached.",
        "",
    ]
    for target in _targets(report):
        lines += [f"### {target}", "", *_target_table(report, target, level), ""]
    return lines


def _target_table(report: dict, target: str, level: str) -> list[str]:
    nuisance = [a for a in _binary(report) if a != target]
    values = [_value_header(v) for v in _values(report)]
    header = ["method", "step", *nuisance, *values, "off-target", "identity", "AUC"]
    directions = _for_target(report, target)
    offs = _array([d["matched"][level]["off_target"] for d in directions])
    best = np.nanmin(offs) if np.isfinite(offs).any() else None
    rows = [
        _target_row(d, level, nuisance, _values(report), off == best)
        for d, off in zip(directions, offs, strict=True)
    ]
    return _table(header, rows)


def _target_row(
    d: dict, level: str, nuisance: list[str], values: list[str], bold: bool
) -> list[str]:
    m = d["matched"][level]
    cells = [d["name"], _with_ci(m["step"], m["step_ci"])]
    cells += [_with_ci(m["change"][a]["mean"], m["change"][a]["ci"]) for a in nuisance]
    cells += [_with_ci(m["change"][v]["mean"], m["change"][v]["ci"], 2) for v in values]
    off = _fmt(m["off_target"])
    cells.append(f"**{off}**" if bold else off)
    cells.append(_with_ci(m["identity"], m["identity_ci"], 4))
    cells.append(_fmt(d.get("separability", {}).get("auc")))
    return cells


def _summary_section(report: dict, level: str) -> list[str]:
    header = ["rank", "tier", "method", "off-target", "identity", "attributes reached"]
    rows = [
        [
            str(r["rank"]),
            str(r["tier"]),
            r["method"],
            _fmt(r["off_target"]),
            _fmt(r["identity"], 4),
            f"{len(r['reached'])}/{len(r['reached']) + len(r['missed'])}"
            + (f" (missed: {', '.join(r['missed'])})" if r["missed"] else ""),
        ]
        for r in method_tiers(report, level)
    ]
    note = (
        f"Per method, means over its target attributes at {level}% matched flip rate. Tier 1:"
        " methods that reached the level on every attribute, ranked by off-target change;"
        " tier 2: methods that missed it on some attribute, ranked the same way over the"
        " attributes they reached (not comparable with tier 1)."
    )
    return ["## Summary", "", note, "", *_table(header, rows), ""]


def _recommendation_section(report: dict) -> list[str]:
    rows = method_scores(report)
    if not rows:
        return []
    level, common = rows[0]["level"], rows[0]["attributes"]
    header = ["method", "kept", "identity", "off-target", *common]
    body = [
        [
            r["method"] + ("" if r["standalone"] else " (needs other boundaries)"),
            _fmt(r["kept"]),
            _fmt(r["identity"]),
            _fmt(r["off_target"]),
            *[_fmt(r["per_attribute"].get(a)) for a in common],
        ]
        for r in rows
    ]
    pick = recommended_methods(report, level)
    per = ", ".join(f"{a} {m or 'none (every edit loses more than it keeps)'}"
                    for a, m in pick["by_attribute"].items())  # fmt: skip
    note = (
        f"What an edit keeps at {level}% matched flips: identity cosine minus off-target change"
        f", averaged over the attributes every method reached ({', '.join(common) or 'none'})."
        " The rule that picks ganedit's default method (docs/directions.md)."
    )
    verdict = f"By this rule: default `{pick['default']}`; per attribute: {per or 'none'}."
    return ["## Recommendation: identity and drift together", "", note, "",
            *_table(header, body), "", verdict, ""]  # fmt: skip


def _cosine_section(report: dict) -> list[str]:
    names = report["cosines"]["names"]
    matrix = _array(report["cosines"]["matrix"])
    # Numbered columns: the full "method:attr" labels would make the table unreadably wide.
    header = ["direction", *[str(i + 1) for i in range(len(names))]]
    rows = [[f"{i + 1} {name}", *[_fmt(v, 2) for v in matrix[i]]] for i, name in enumerate(names)]
    return ["## Cosines between directions", "", *_table(header, rows), ""]


# ---------------------------------------------------------------- plots


def _write_plots(report: dict, out: Path) -> list[tuple[str, str]]:
    """Write every PNG; return (alt text, file name) pairs in the order they are embedded."""
    _plot_curves(report, out / "tradeoff.png", _off_target_curve, "off_target", "off-target |Δp|")
    _plot_curves(report, out / "identity.png", _identity_curve, "identity", "identity cosine")
    images = [("tradeoff", "tradeoff.png"), ("identity", "identity.png")]
    for level in _levels(report):
        name = f"rescoring_{level}.png"
        _plot_rescoring(report, level, out / name)
        images.append((f"rescoring at {level}%", name))
    _plot_cosines(report, out / "cosines.png")
    return images + [("cosines", "cosines.png")]


def _figure(width: float, height: float) -> Figure:
    # A bare Figure on an Agg canvas: no pyplot, so no display and no global figure registry
    # holding memory (nothing to close).
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")  # the temporary name does not end in .png


def _colors(report: dict) -> dict[str, tuple]:
    cmap = matplotlib.colormaps["tab10"]
    return {name: cmap(i % 10) for i, name in enumerate(_methods(report))}


def _off_target_curve(report: dict, d: dict) -> np.ndarray:
    """Mean |delta p| over the non-target binary attributes at every grid step [S]."""
    change = d["curve"]["change"]
    rows = [_array(change[a]) for a in _binary(report) if a != d["attribute"]]
    return np.mean(rows, axis=0) if rows else np.full(len(d["curve"]["step"]), np.nan)


def _identity_curve(report: dict, d: dict) -> np.ndarray:
    return _array(d["curve"]["identity"])


def _plot_curves(report: dict, path: Path, y_of: Callable, matched_key: str, ylabel: str) -> None:
    """One panel per target: y against flip rate per method, marks at the matched levels."""
    targets, colors, levels = _targets(report), _colors(report), _levels(report)
    cols = min(len(targets), 4)
    rows = math.ceil(len(targets) / cols)
    fig = _figure(3.6 * cols + 1.8, 3.0 * rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[len(targets) :]:
        ax.set_visible(False)
    for ax, target in zip(axes, targets, strict=False):  # axes may be more
        for d in _for_target(report, target):
            color = colors[d["name"]]
            ax.plot(_array(d["curve"]["flip_rate"]), y_of(report, d), color=color)
            for level, marker in zip(levels, MARKERS, strict=False):
                y = _num(d["matched"][level][matched_key])
                ax.plot(float(level) / 100, y, marker, color=color, markersize=6)
        ax.set(title=target, xlabel="target flip rate", ylabel=ylabel, xlim=(-0.02, 1.02))
        ax.grid(alpha=0.3)
    fig.legend(handles=_legend_handles(colors, levels), loc="outside right upper", fontsize=8)
    _save(fig, path)


def _legend_handles(colors: dict, levels: list[str]) -> list[Line2D]:
    methods = [Line2D([], [], color=c, label=name) for name, c in colors.items()]
    marks = [
        Line2D([], [], color="0.4", marker=m, linestyle="none", label=f"{level}% matched")
        for level, m in zip(levels, MARKERS, strict=False)
    ]
    return methods + marks


def _heatmap(ax, values, rows, cols, fmt: str, fontsize: float = 7, **imshow_kw):
    """Annotated heatmap; NaN cells grey and marked n/a."""
    cmap = matplotlib.colormaps[imshow_kw.pop("cmap")].with_extremes(bad="0.85")
    im = ax.imshow(np.ma.masked_invalid(values), aspect="auto", cmap=cmap, **imshow_kw)
    ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    for (i, j), v in np.ndenumerate(values):
        text = fmt.format(v) if math.isfinite(v) else "n/a"
        ax.text(j, i, text, ha="center", va="center", fontsize=fontsize, color=_ink(im, v))
    return im


def _ink(im, value: float) -> str:
    """White text on dark cells, black on light ones."""
    if not math.isfinite(value):
        return "black"
    r, g, b, _ = im.cmap(im.norm(value))
    return "white" if 0.299 * r + 0.587 * g + 0.114 * b < 0.5 else "black"


def _plot_rescoring(report: dict, level: str, path: Path) -> None:
    """Matched mean |delta p| per direction x attribute; each value attribute (yaw, degrees)
    in its own panel, with its own colour scale."""
    directions, binary = report["directions"], _binary(report)
    labels = [_label(d) for d in directions]
    values = _array(
        [[d["matched"][level]["change"][a]["mean"] for a in binary] for d in directions]
    )
    is_target = np.array([[a == d["attribute"] for a in binary] for d in directions])
    value_names = _values(report)
    fig = _figure(2.8 + 0.8 * (len(binary) + len(value_names)), 1.4 + 0.32 * len(directions))
    ratios = [len(binary)] + [1] * len(value_names)
    axes = fig.subplots(1, len(ratios), squeeze=False, width_ratios=ratios)[0]
    im = _heatmap(
        axes[0],
        values,
        labels,
        binary,
        "{:.3f}",
        cmap="viridis",
        vmin=0,
        vmax=_vmax(values, ~is_target),
    )
    for i, j in zip(*np.nonzero(is_target), strict=True):
        axes[0].add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", lw=1.5))
    fig.colorbar(im, ax=axes[0], shrink=0.8, label="mean |Δp|")
    for ax, name in zip(axes[1:], value_names, strict=True):
        drift = _array([[d["matched"][level]["change"][name]["mean"]] for d in directions])
        _heatmap(ax, drift, labels, [_value_header(name)], "{:.1f}", cmap="magma", vmin=0)
        ax.set_yticks([])
    fig.suptitle(
        f"Re-scoring at {level}% target flip rate\n"
        "targets outlined in red; colours scaled to the off-target cells",
        fontsize=9,
    )
    _save(fig, path)


def _vmax(values: np.ndarray, mask: np.ndarray) -> float:
    # The colour scale follows the off-target cells: target changes are an order of magnitude
    # larger and would wash out the differences that matter (targets saturate, still annotated).
    scale = values[mask & np.isfinite(values)]
    return float(scale.max()) if scale.size and scale.max() > 0 else 1.0


def _plot_cosines(report: dict, path: Path) -> None:
    names = report["cosines"]["names"]
    matrix = _array(report["cosines"]["matrix"])
    size = 2.5 + 0.45 * len(names)
    fig = _figure(size + 1.0, size)
    ax = fig.subplots()
    fontsize = max(4.0, min(8.0, 160 / max(len(names), 1)))
    im = _heatmap(
        ax, matrix, names, names, "{:.2f}", fontsize=fontsize, cmap="coolwarm", vmin=-1, vmax=1
    )
    fig.colorbar(im, ax=ax, shrink=0.8, label="cosine")
    ax.set_title("Cosines between directions")
    _save(fig, path)
