"""Charts of a bench_suite.py report, rendered with matplotlib (Agg, no display needed).

:func:`render` writes ``suite-throughput.png`` (throughput and client CPU per GiB
by workload and contender) and ``suite-memory.png`` (RSS over time in the memory
workload).  matplotlib is imported inside, so a run without it still gets its
table and JSON; :func:`render` then raises ImportError.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

MIB = 1024 * 1024

# One colour per contender, the same in every chart.
COLOURS = {
    "aqueuepipe": "#1b7837",
    "aqueuepipe_crc32": "#7fbf7b",
    "boto3": "#2166ac",
    "aioboto3": "#67a9cf",
    "obstore": "#b2182b",
    "s3fs": "#ef8a62",
    "aqueuepipe-defaults": "#5aae61",
    "boto3-defaults": "#4393c3",
    "aioboto3-defaults": "#7fa7c9",
    "obstore-defaults": "#d6604d",
    "aqueuepipe_server": "#00441b",
    "boto3_copy": "#053061",
}
DEFAULTS = ("aqueuepipe-defaults", "boto3-defaults", "aioboto3-defaults", "obstore-defaults")
ORDER = ("aqueuepipe", "boto3", "aioboto3", "obstore", "s3fs", *DEFAULTS, "aqueuepipe_crc32")
ORDER += ("aqueuepipe_server", "boto3_copy")
NAMES = {
    "aqueuepipe": "aqueuepipe\nstreamed",
    "aqueuepipe_crc32": "aqueuepipe\n+crc32 (info)",
    "aqueuepipe_server": "aqueuepipe\nserver-side",
    "boto3_copy": "boto3\ncopy()",
    **{key: key.replace("-", "\n") for key in DEFAULTS},
}
LIMIT_MB = 30
TARGET_MB = 55


def _subtitle(report: dict[str, Any]) -> str:
    machine = report["machine"]
    return (
        f"{report['date'][:10]}, {machine['cpu_model']}, {machine['nproc']} CPUs, "
        f"Python {machine['python']}, moto {report['versions'].get('moto', '?')} on the same "
        f"machine; median of {report['parameters']['rounds']} round(s)"
    )


def render(report: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write the charts into ``out_dir``; return their paths.

    Raises:
        ImportError: matplotlib is not installed.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = [_throughput(plt, report, out_dir)]
    memory = report["results"].get("memory")
    if memory is not None:
        paths.append(_memory(plt, report, memory, out_dir))
    return paths


def _throughput(plt: Any, report: dict[str, Any], out_dir: Path) -> Path:
    results: dict[str, Any] = report["results"]
    # At least 8 inches wide, so that the title fits over a single workload.
    width = max(4.2 * len(results), 8.0)
    fig, axes = plt.subplots(2, len(results), figsize=(width, 7.5), squeeze=False)
    for column, (wkey, entry) in enumerate(results.items()):
        per_object = wkey == "small"
        names, rates, lows, highs, cpus, colours = [], [], [], [], [], []
        for key in ORDER:
            stats = entry["contenders"].get(key)
            if not stats or "median_mb_per_s" not in stats:
                continue
            if per_object:
                series = [entry["objects"] / run["seconds"] for run in _good(stats)]
                rate = stats["median_objects_per_s"]
            else:
                series = stats["mb_per_s"]
                rate = stats["median_mb_per_s"]
            names.append(NAMES.get(key, key))
            rates.append(rate)
            lows.append(rate - min(series))
            highs.append(max(series) - rate)
            cpus.append(stats["median_cpu_seconds_per_gib"])
            colours.append(COLOURS.get(key, "grey"))
        top, bottom = axes[0][column], axes[1][column]
        positions = range(len(names))
        top.bar(positions, rates, color=colours, yerr=[lows, highs], capsize=3)
        for x, rate in zip(positions, rates, strict=True):
            # Inside the bar, so that it clears the error bar.
            top.annotate(
                f"{rate:.0f}",
                (x, rate * 0.5),
                ha="center",
                va="center",
                fontsize=8,
                color="white",
                fontweight="bold",
            )
        ceiling = entry.get("ceiling")
        tallest = max((r + h for r, h in zip(rates, highs, strict=True)), default=1.0)
        if ceiling is not None:
            top.axhline(ceiling["value"], color="black", linestyle="--", linewidth=1)
            top.annotate(
                f"ceiling {ceiling['value']:.0f}",
                (-0.45, ceiling["value"]),
                ha="left",
                va="bottom",
                fontsize=8,
            )
            tallest = max(tallest, ceiling["value"])
        top.set_ylim(0, tallest * 1.1)
        top.set_title(f"{wkey}: {entry['label']}", fontsize=10)
        top.set_ylabel("objects/s" if per_object else "MB/s")
        top.set_xticks(list(positions), names, rotation=30, ha="right", fontsize=8)
        bottom.bar(positions, cpus, color=colours)
        for x, cpu in zip(positions, cpus, strict=True):
            bottom.annotate(
                f"{cpu:.1f}",
                (x, cpu),
                ha="center",
                va="bottom",
                fontsize=8,
                xytext=(0, 2),
                textcoords="offset points",
            )
        bottom.set_ylabel("client CPU s/GiB (lower is better)")
        bottom.set_xticks(list(positions), names, rotation=30, ha="right", fontsize=8)
    fig.suptitle("S3 copy throughput (top, error bars: min-max of rounds) and client CPU (bottom)")
    return _save(plt, fig, report, out_dir / "suite-throughput.png", (0, 0.02, 1, 0.97))


def _save(plt: Any, fig: Any, report: dict[str, Any], path: Path, rect: tuple[float, ...]) -> Path:
    """Caption ``fig`` with the run's subtitle, lay it out in ``rect``, write it to ``path``."""
    fig.text(0.5, 0.005, _subtitle(report), ha="center", fontsize=8)
    fig.tight_layout(rect=rect)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _good(stats: dict[str, Any]) -> list[dict[str, Any]]:
    return [run for run in stats["rounds"] if "failed" not in run]


def _memory(plt: Any, report: dict[str, Any], entry: dict[str, Any], out_dir: Path) -> Path:
    fig, (whole, zoom) = plt.subplots(1, 2, figsize=(12, 5), gridspec_kw={"width_ratios": [3, 2]})
    for key in ORDER:
        stats = entry["contenders"].get(key)
        if not stats or "rss_series_median_run" not in stats:
            continue
        series = stats["rss_series_median_run"]["series"]
        times = [t for t, _ in series]
        megabytes = [kib * 1024 / 1e6 for _, kib in series]
        label = f"{key} (peak {stats['median_rss_growth_mib'] * MIB / 1e6:.0f} MB)"
        for ax in (whole, zoom):
            ax.plot(times, megabytes, label=label, color=COLOURS.get(key, "grey"), linewidth=1.5)
    for ax in (whole, zoom):
        ax.axhline(LIMIT_MB, color="black", linestyle=":", linewidth=1)
        ax.axhline(TARGET_MB, color="black", linestyle="--", linewidth=1)
        ax.set_xlabel("seconds since the copies started")
    zoom.annotate("aqueuepipe's limit, 30 MB", (0, LIMIT_MB), va="bottom", fontsize=8)
    zoom.annotate("target: limit + 25 MB", (0, TARGET_MB), va="bottom", fontsize=8)
    zoom.set_ylim(0, TARGET_MB * 1.5)
    zoom.set_title("the same, 0-80 MB", fontsize=10)
    whole.set_ylabel("RSS growth of the client process, MB")
    whole.set_title(f"memory: {entry['label']} (VmRSS every 50 ms, median round)", fontsize=10)
    whole.legend(fontsize=8, loc="center right")
    return _save(plt, fig, report, out_dir / "suite-memory.png", (0, 0.03, 1, 1))
