"""What every ``openrealtime bench`` run records and writes: the machine, the command, results, plots.

A bench measures; this module owns how a run is reported, so the five benches report alike:

* :func:`machine`: the CPU, cores, memory and GPU the run was on, the package version and the
  server settings (or the URL of the server that was measured);
* :func:`percentile` and :func:`distribution`: the statistics every table uses;
* :func:`progress`: the one line per turn, level or trial printed while a bench runs;
* :func:`write_results`: ``results.json``, ``summary.md`` (with the machine and the exact command
  that reproduces the run) and PNG plots drawn from the :class:`Plots` the bench hands over:
  latency distributions, a per-stage breakdown and load curves.

matplotlib (the ``bench`` extra) is imported inside the plotting code only; without it a run still
writes its JSON and markdown.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from openrealtime.server.settings import Settings

PACKAGE = "openrealtime"
KIB_PER_GIB = 1024 * 1024
NVIDIA_SMI = "nvidia-smi"
NVIDIA_SMI_ARGS = ("--query-gpu=name,memory.total", "--format=csv,noheader")
NVIDIA_SMI_TIMEOUT_S = 10.0
SECRET_FLAGS = ("--api-key",)  # their values never reach summary.md
REDACTED = "***"
DEFAULT_QUANTILES = (50, 95)
MEDIAN = 50

RESULTS_FILE = "results.json"
SUMMARY_FILE = "summary.md"
LATENCY_PLOT = "latency.png"
STAGES_PLOT = "stages.png"
LOAD_PLOT = "load.png"
PLOT_DPI = 110
FIGURE_WIDTH_IN = 8.0
PANEL_HEIGHT_IN = 2.8
STAGE_BAR_WIDTH = 0.7
MANY_BARS = 12  # above this many bars, their labels are turned to stay legible
LABEL_ROTATION_DEG = 45
X_MARGIN = 0.03  # of a distribution's largest value: room either side of the x axis


@dataclass(frozen=True)
class Series:
    """One measured latency series: a line in a latency-distribution panel.

    Attributes:
        label: What was measured (``"first delta after speech onset"``); the panel's title when the
            series has the panel to itself, its legend entry otherwise.
        values: One value per turn (or append, sentence, trial), in :attr:`Plots.unit`.
        panel: Series with the same panel share one set of axes (one line per load level, say);
            ``None`` gives the series a panel of its own.
    """

    label: str
    values: Sequence[float]
    panel: str | None = None


@dataclass(frozen=True)
class Stages:
    """A per-stage breakdown: one stacked bar per turn (or sentence, or configuration).

    Attributes:
        bars: The label of each bar.
        parts: For each stage in order, its value in every bar (``len(bars)`` values each).
        unit: The unit of the values.
        bar_kind: What a bar is (``"turn"``), the label of the x axis.
    """

    bars: Sequence[str]
    parts: Mapping[str, Sequence[float]]
    unit: str = "s"
    bar_kind: str = ""


@dataclass(frozen=True)
class LoadCurve:
    """Latency percentiles against the number of concurrent sessions.

    Attributes:
        sessions: The number of sessions of each level.
        curves: For each metric (``"first delta p95"``), its value at every level.
        targets: The target of a metric, drawn as a dashed line, by the same names as ``curves``.
        unit: The unit of the values.
    """

    sessions: Sequence[int]
    curves: Mapping[str, Sequence[float]]
    targets: Mapping[str, float] = field(default_factory=dict)
    unit: str = "s"


@dataclass(frozen=True)
class Plots:
    """What a bench hands :func:`write_results` to draw; each part that is empty is not drawn."""

    latencies: Sequence[Series] = ()
    unit: str = "s"
    stages: Stages | None = None
    load: LoadCurve | None = None


# --- statistics -------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0-100) of a non-empty sequence."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def distribution(values: Sequence[float], quantiles: Sequence[int] = DEFAULT_QUANTILES) -> dict[str, float] | None:
    """``{"mean", "p50", "p95", ..., "max", "n"}`` of ``values``; ``None`` when there are none.

    ``p50`` is the median (the mean of the middle two of an even count), as the benches' tables print
    it; the other quantiles are :func:`percentile`'s nearest rank.
    """
    if not values:
        return None
    stats: dict[str, float] = {"mean": statistics.fmean(values)}
    stats.update({f"p{q}": statistics.median(values) if q == MEDIAN else percentile(values, q) for q in quantiles})
    stats["max"] = max(values)
    stats["n"] = len(values)
    return stats


# --- the machine ------------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / KIB_PER_GIB, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def gpus() -> list[dict[str, str]] | None:
    """The GPUs ``nvidia-smi`` lists (name and total memory), or ``None`` without one."""
    if shutil.which(NVIDIA_SMI) is None:
        return None
    try:
        listing = subprocess.run(
            [NVIDIA_SMI, *NVIDIA_SMI_ARGS], capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT_S, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = []
    for line in listing.splitlines():
        name, _, memory = line.partition(",")
        if name.strip():
            found.append({"name": name.strip(), "memory_total": memory.strip()})
    return found or None


def _version() -> str | None:
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        return None


def machine(settings: Settings | None = None, *, url: str | None = None) -> dict[str, Any]:
    """The machine and software a run measured with.

    Args:
        settings: The settings of the server the bench started in this process, if it did.
        url: The URL the bench connected to.

    Returns:
        ``cpu``, ``cores``, ``memory_gib``, ``gpu`` (a list, or ``None``), ``python``, ``os``,
        ``openrealtime`` (the package version) and ``server``: ``None`` for a bench that starts no
        server, else its URL, whether it ran in this process and its settings (key hidden).
    """
    server = None
    if settings is not None or url is not None:
        server = {
            "url": url,
            "in_process": settings is not None,
            "settings": settings.redacted() if settings is not None else None,
        }
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "gpu": gpus(),
        "python": platform.python_version(),
        "os": platform.platform(),
        PACKAGE: _version(),
        "server": server,
    }


# --- while a run goes on ----------------------------------------------------------------------------


def progress(label: str, index: int, total: int | None, text: str) -> None:
    """One progress line, the same in every bench: ``  turn  3/20: 0.42 s 'what was heard'``."""
    count = f"{index:>{len(str(total))}}/{total}" if total else str(index)
    print(f"  {label} {count}: {text}", flush=True)


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command that reproduces this run, as a shell line, with secret values replaced."""
    args = list(sys.argv[1:] if argv is None else argv)
    shown: list[str] = []
    hide_next = False
    for arg in args:
        if hide_next:
            shown.append(REDACTED)
            hide_next = False
        elif arg in SECRET_FLAGS:
            shown.append(arg)
            hide_next = True
        elif arg.split("=", 1)[0] in SECRET_FLAGS and "=" in arg:
            shown.append(f"{arg.split('=', 1)[0]}={REDACTED}")
        else:
            shown.append(arg)
    return shlex.join([PACKAGE, *shown])


# --- writing a run ----------------------------------------------------------------------------------


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinity replaced by ``None``, so ``results.json`` is strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def _machine_lines(info: Mapping[str, Any]) -> list[str]:
    gpu = info.get("gpu")
    gpu_text = ", ".join(f"{g['name']} ({g['memory_total']})" for g in gpu) if gpu else "none"
    lines = [
        "| | |",
        "|---|---|",
        f"| CPU | {info.get('cpu')} |",
        f"| cores | {info.get('cores')} |",
        f"| memory | {info.get('memory_gib')} GiB |",
        f"| GPU | {gpu_text} |",
        f"| Python | {info.get('python')} ({info.get('os')}) |",
        f"| {PACKAGE} | {info.get(PACKAGE)} |",
    ]
    server = info.get("server")
    if server:
        where = "started in this process" if server.get("in_process") else "remote"
        lines.append(f"| server | {server.get('url')} ({where}) |")
        settings = server.get("settings")
        if settings:
            shown = ", ".join(f"{k}={v}" for k, v in settings.items() if v is not None)
            lines.append(f"| server settings | {shown} |")
    return lines


def write_results(
    out_dir: Path,
    kind: str,
    summary: Mapping[str, Any],
    table: str,
    *,
    plots: Plots | None = None,
    command: str | None = None,
) -> list[Path]:
    """Write ``results.json``, ``summary.md`` and the plots of one run into ``out_dir``.

    Args:
        out_dir: Created if missing; files of an earlier run there are overwritten.
        kind: The bench (``transcription``, ``load``, ...).
        summary: The run's figures; its ``machine`` (from :func:`machine`) is added if missing.
        table: The markdown table the bench printed.
        plots: What to draw; nothing is drawn without it.
        command: The command line that reproduces the run (default: this process's, see
            :func:`command_line`).

    Returns:
        The files written.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    command = command or command_line()
    results = finite({"kind": kind, "command": command, **summary})
    results.setdefault("machine", machine())
    written = [out_dir / RESULTS_FILE]
    written[0].write_text(json.dumps(results, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    images = draw(out_dir, kind, plots) if plots is not None else []
    lines = [
        f"# bench {kind}",
        "",
        "Reproduce with:",
        "",
        "```",
        command,
        "```",
        "",
        "## Machine",
        "",
        *_machine_lines(results["machine"]),
        "",
        "## Results",
        "",
        table,
    ]
    if images:
        lines += ["", "## Plots", ""] + [f"![{p.stem}]({p.name})" for p in images]
    summary_path = out_dir / SUMMARY_FILE
    summary_path.write_text("\n".join(lines) + "\n")
    written += [summary_path, *images]
    print(f"wrote {', '.join(str(p) for p in written)}", flush=True)
    return written


# --- plots ------------------------------------------------------------------------------------------


def draw(out_dir: Path, kind: str, plots: Plots) -> list[Path]:
    """Draw the non-empty parts of ``plots`` as PNGs in ``out_dir``; returns the files written."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        print(f"matplotlib is not installed (pip install '{PACKAGE}[bench]'): no plots", flush=True)
        return []

    def save(figure: Figure, name: str) -> Path:
        FigureCanvasAgg(figure)  # the Agg canvas, without pyplot's global state
        figure.tight_layout()
        path = out_dir / name
        figure.savefig(path, dpi=PLOT_DPI)
        return path

    written = []
    panels = _panels(plots.latencies)
    if panels:
        figure = Figure(figsize=(FIGURE_WIDTH_IN, PANEL_HEIGHT_IN * len(panels)))
        for axes, (title, series) in zip(figure.subplots(len(panels), 1, squeeze=False)[:, 0], panels, strict=True):
            _latency_panel(axes, title, series, plots.unit)
        figure.suptitle(f"bench {kind}: latency distributions")
        written.append(save(figure, LATENCY_PLOT))
    if plots.stages is not None and plots.stages.bars:
        figure = Figure(figsize=(FIGURE_WIDTH_IN, PANEL_HEIGHT_IN * 1.5))
        _stages_panel(figure.add_subplot(), plots.stages)
        figure.suptitle(f"bench {kind}: per-stage breakdown")
        written.append(save(figure, STAGES_PLOT))
    if plots.load is not None and plots.load.sessions:
        figure = Figure(figsize=(FIGURE_WIDTH_IN, PANEL_HEIGHT_IN * 1.5))
        _load_panel(figure.add_subplot(), plots.load)
        figure.suptitle(f"bench {kind}: latency against concurrent sessions")
        written.append(save(figure, LOAD_PLOT))
    return written


def _panels(latencies: Sequence[Series]) -> list[tuple[str, list[tuple[str, list[float]]]]]:
    """Group the series by panel, in order of first appearance, keeping finite values only."""
    panels: dict[str, list[tuple[str, list[float]]]] = {}
    for series in latencies:
        values = [v for v in series.values if math.isfinite(v)]
        if values:
            panels.setdefault(series.panel or series.label, []).append((series.label, values))
    return list(panels.items())


def _latency_panel(axes: Axes, title: str, series: list[tuple[str, list[float]]], unit: str) -> None:
    """Empirical CDFs (one step line per series), with each series' p50 and p95 marked."""
    for label, values in series:
        ordered = sorted(values)
        fractions = [0.0, *((i + 1) / len(ordered) for i in range(len(ordered)))]
        (line,) = axes.step([ordered[0], *ordered], fractions, where="post", label=f"{label} (n={len(ordered)})")
        for q, style in ((50, ":"), (95, "--")):
            axes.axvline(percentile(ordered, q), color=line.get_color(), linestyle=style, linewidth=1)
    axes.set_title(title + "   (dotted: p50, dashed: p95)", fontsize="medium")
    axes.set_xlabel(unit)
    axes.set_ylabel("fraction ≤ x")
    top = max(max(values) for _, values in series)
    if top > 0:  # latencies are never negative: show them against zero, a line at zero stays visible
        axes.set_xlim(-top * X_MARGIN, top * (1 + X_MARGIN))
    axes.set_ylim(0, 1.05)
    axes.grid(alpha=0.3)
    if len(series) > 1 or series[0][0] != title:
        axes.legend(fontsize="small")


def _stages_panel(axes: Axes, stages: Stages) -> None:
    positions = list(range(len(stages.bars)))
    bottom = [0.0] * len(positions)
    for name, values in stages.parts.items():
        heights = [v if math.isfinite(v) else 0.0 for v in values]
        axes.bar(positions, heights, STAGE_BAR_WIDTH, bottom=bottom, label=name)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    rotation = LABEL_ROTATION_DEG if len(positions) > MANY_BARS else 0
    axes.set_xticks(positions, list(stages.bars), rotation=rotation, fontsize="small")
    axes.set_xlabel(stages.bar_kind)
    axes.set_ylabel(stages.unit)
    axes.grid(axis="y", alpha=0.3)
    axes.legend(fontsize="small")


def _load_panel(axes: Axes, load: LoadCurve) -> None:
    for name, values in load.curves.items():
        shown = [v if math.isfinite(v) else math.nan for v in values]
        (line,) = axes.plot(list(load.sessions), shown, marker="o", label=name)
        if name in load.targets:
            axes.axhline(load.targets[name], color=line.get_color(), linestyle="--", linewidth=1)
    axes.set_xticks(list(load.sessions))
    axes.set_xlabel("concurrent sessions")
    axes.set_ylabel(f"{load.unit} (dashed: target)")
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
