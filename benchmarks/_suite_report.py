"""The benchmark suite's (bench_suite.py) side after the runs: its targets, the
summary of the raw readings (medians, the ceiling, the ratios), the checks of the
targets, and the table (terminal and markdown).

Imports the workloads (_suite_workloads) but not the measuring.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from _machine import markdown_table
from _server import through_client
from _suite_workloads import (
    BY_KEY,
    DEFAULTS_PAIR,
    GIB,
    KIB,
    LIMIT,
    MB,
    MIB,
    REFERENCE,
    Workload,
)

# The targets (same run, medians).
TARGETS = {
    "big": {"ceiling": 0.9, "others": 1.0},
    "mixed": {"ceiling": 0.85, "others": 1.0},
    "small": {"others": 1.0},
    "stream": {"others": 1.0},
}
MEMORY_TARGET_BYTES = LIMIT + 25_000_000
# aqueuepipe's reading the lowest of the copy rows: (workload, statistic, what, unit).
LOWEST_TARGETS = (
    ("big", "median_cpu_seconds_per_gib", "client CPU per GiB", "s/GiB"),
    ("mixed", "median_cpu_seconds_per_gib", "client CPU per GiB", "s/GiB"),
    ("stream", "median_rss_growth_mib", "peak RSS growth", "MiB"),
)
# Issue 19: client CPU of the streamed copy against boto3's streaming transfer, at most
# this ratio, on each server (plain moto: MD5 is the evidence; validating: none needed).
CPU_TARGETS = {"plain": 0.7, "validating": 0.4}
CPU_WORKLOADS = ("big", "mixed", "stream")


# -- summarising --------------------------------------------------------------------


def _median(values: list[float]) -> float:
    return statistics.median(values)


def summarise(
    raw: dict[str, dict[str, list[dict[str, Any]]]],
    chosen: dict[str, Workload],
    missing: dict[str, str],
    on: str = "plain",
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for wkey, by_contender in raw.items():
        workload = chosen[wkey]
        size = workload.total_bytes
        count = len(workload.objects)
        entry: dict[str, Any] = {
            "label": workload.label,
            "objects": count,
            "bytes": size,
            "batch": workload.batch,
            "generated": workload.generated,
            "contenders": {},
        }
        for key in workload.contenders(on):
            contender = BY_KEY[key]
            label = workload.label_of(key)
            if key in missing:
                entry["contenders"][key] = {"label": label, "not_installed": missing[key]}
                continue
            if key not in by_contender:
                continue  # not chosen for this run
            runs = by_contender[key]
            good = [run for run in runs if "failed" not in run]
            stats: dict[str, Any] = {
                "label": label,
                "kind": contender.kind,
                "rounds": runs,
                "failed_rounds": len(runs) - len(good),
            }
            if good:
                cpu_per_gib = [run["cpu_seconds"] / (size / GIB) for run in good]
                server = [run["server_cpu_seconds"] for run in good]
                peaks = [run["rss_growth_kib"] / KIB for run in good]
                stats.update(
                    {
                        "mb_per_s": [size / run["seconds"] / MB for run in good],
                        "median_mb_per_s": _median([size / run["seconds"] / MB for run in good]),
                        "median_objects_per_s": _median([count / run["seconds"] for run in good]),
                        "median_seconds": _median([run["seconds"] for run in good]),
                        "median_cpu_seconds_per_gib": _median(cpu_per_gib),
                        "median_cpu_ms_per_object": _median(
                            [run["cpu_seconds"] * 1000 / count for run in good]
                        ),
                        "median_rss_growth_mib": _median(peaks),
                        "max_rss_growth_mib": max(peaks),
                        "median_server_cpu_seconds_per_gib": (
                            _median([s / (size / GIB) for s in server])
                            if all(s is not None for s in server)
                            else None
                        ),
                        **through_client(good),
                    }
                )
                if workload.keep_rss_series:
                    stats["rss_series_median_run"] = _median_series(good)
            entry["contenders"][key] = stats
        entry["ceiling"] = _ceiling(entry["contenders"], workload)
        _ratios(entry, workload)
        results[wkey] = entry
    return results


def _median_series(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The RSS series of the run whose peak is the median one (rounded down)."""
    ordered = sorted(runs, key=lambda run: run["rss_growth_kib"])
    run = ordered[(len(ordered) - 1) // 2]
    return {"round": run["round"], "series": run["rss_series"]}


def _rate(stats: dict[str, Any] | None, per_object: bool) -> float | None:
    if not stats or "median_mb_per_s" not in stats:
        return None
    return float(stats["median_objects_per_s" if per_object else "median_mb_per_s"])


def _ceiling(contenders: dict[str, Any], workload: Workload) -> dict[str, Any] | None:
    if not workload.ceilings:
        return None
    read = _rate(contenders.get("get"), workload.per_object)
    ingests = {k: _rate(contenders.get(k), workload.per_object) for k in ("put", "parts")}
    ingests = {k: v for k, v in ingests.items() if v is not None}
    if read is None or not ingests:
        return None
    by = max(ingests, key=lambda k: ingests[k])
    value = min(read, ingests[by])
    return {
        "value": value,
        "unit": "objects/s" if workload.per_object else "MB/s",
        "read": read,
        "ingest": ingests[by],
        "ingest_by": by,
        "bound_by": "read" if read <= ingests[by] else "ingest",
    }


def _ratios(entry: dict[str, Any], workload: Workload) -> None:
    contenders = entry["contenders"]
    ceiling = entry["ceiling"]
    for key, stats in contenders.items():
        rate = _rate(stats, workload.per_object)
        kind = BY_KEY[key].kind
        if rate is None or kind not in ("copy", "variant", "defaults", "server_side"):
            continue
        if ceiling is not None:
            stats["ratio_to_ceiling"] = rate / ceiling["value"]
        reference = REFERENCE.get(kind, key)
        ours = _rate(contenders.get(reference), workload.per_object)
        if ours is not None and key != reference:
            stats["aqueuepipe_ratio"] = ours / rate
            stats["aqueuepipe_ratio_of"] = reference


def check_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of the issue: what was asked, what was measured, met or not."""
    checks: list[dict[str, Any]] = []
    for wkey, target in TARGETS.items():
        entry = results.get(wkey)
        if entry is None or "median_mb_per_s" not in entry["contenders"].get("aqueuepipe", {}):
            continue
        ours = entry["contenders"]["aqueuepipe"]
        if "ceiling" in target and "ratio_to_ceiling" in ours:
            ratio = ours["ratio_to_ceiling"]
            checks.append(
                {
                    "workload": wkey,
                    "target": f">= {target['ceiling']:.2f}x the ceiling",
                    "measured": f"{ratio:.2f}x",
                    "met": ratio >= target["ceiling"],
                }
            )
        for key, stats in entry["contenders"].items():
            if BY_KEY[key].kind not in ("copy", "server_side") or "aqueuepipe_ratio" not in stats:
                continue
            ratio = stats["aqueuepipe_ratio"]
            checks.append(
                {
                    "workload": wkey,
                    "target": f">= {target['others']:.2f}x {key}"
                    + (" (objects/s)" if wkey == "small" else " (MB/s)"),
                    "measured": f"{ratio:.2f}x",
                    "met": ratio >= target["others"],
                }
            )
    for wkey in TARGETS:
        ours = results.get(wkey, {}).get("contenders", {}).get("aqueuepipe_server", {})
        if "max_get_objects" in ours:
            checks.append(
                {
                    "workload": wkey,
                    "target": "server-side: no body through the client (the server's count)",
                    "measured": f"{ours['max_get_objects']} GetObject, "
                    f"{ours['max_upload_body_bytes']} upload body bytes",
                    "met": ours["max_get_objects"] == 0 and ours["max_upload_body_bytes"] == 0,
                }
            )
    memory = results.get("memory", {}).get("contenders", {}).get("aqueuepipe", {})
    if "median_rss_growth_mib" in memory:
        limit_mib = MEMORY_TARGET_BYTES / MIB
        checks.append(
            {
                "workload": "memory",
                "target": f"peak RSS growth <= {MEMORY_TARGET_BYTES / MB:.0f} MB "
                f"({limit_mib:.1f} MiB)",
                "measured": f"{memory['median_rss_growth_mib']:.1f} MiB median, "
                f"{memory['max_rss_growth_mib']:.1f} MiB max",
                "met": memory["median_rss_growth_mib"] <= limit_mib,
            }
        )
    for wkey, statistic, what, unit in LOWEST_TARGETS:
        entry = results.get(wkey)
        if entry is None:
            continue
        values = {
            k: s[statistic]
            for k, s in entry["contenders"].items()
            if BY_KEY[k].kind == "copy" and statistic in s
        }
        if "aqueuepipe" not in values or len(values) < 2:
            continue
        others = {k: v for k, v in values.items() if k != "aqueuepipe"}
        best = min(others, key=lambda k: others[k])
        checks.append(
            {
                "workload": wkey,
                "target": f"lowest {what}",
                "measured": f"{values['aqueuepipe']:.2f} {unit} vs {best} {others[best]:.2f}",
                "met": values["aqueuepipe"] <= others[best],
            }
        )
    return checks


def cpu_targets(results: dict[str, Any], server: str) -> list[dict[str, Any]]:
    """Issue 19 on ``server``'s results: the streamed copy's client CPU per GiB at most
    CPU_TARGETS[server] x boto3's (equal settings and defaults), on plain moto with
    defaults also throughput >= 1.0x boto3's."""
    checks: list[dict[str, Any]] = []
    pairs = (("aqueuepipe", "boto3"), DEFAULTS_PAIR)
    for ratio in (r for pair in pairs for r in pair_ratios(results, pair, CPU_WORKLOADS)):
        (ours, theirs), (our_cpu, their_cpu) = ratio["rows"], ratio["cpu_seconds_per_gib"]
        cpu, target = ratio["cpu_seconds_per_gib_ratio"], CPU_TARGETS[server]
        checks.append(
            {
                "workload": ratio["workload"],
                "target": f"{server} server: client CPU per GiB <= {target:.1f}x {theirs}",
                "measured": f"{cpu:.2f}x ({our_cpu:.2f} / {their_cpu:.2f} s/GiB)",
                "met": cpu <= target,
            }
        )
        if server == "plain" and ours == DEFAULTS_PAIR[0]:
            checks.append(
                {
                    "workload": ratio["workload"],
                    "target": f"plain server: >= 1.00x {theirs} (MB/s)",
                    "measured": f"{ratio['throughput_ratio']:.2f}x",
                    "met": ratio["throughput_ratio"] >= 1.0,
                }
            )
    return checks


def pair_ratios(
    results: dict[str, Any], pair: tuple[str, str], workloads: Iterable[str]
) -> list[dict[str, Any]]:
    """One row against another (aqueuepipe's first) on each of ``workloads`` that ran
    both: throughput and client CPU per GiB ratios."""
    ours_key, theirs_key = pair
    found: list[dict[str, Any]] = []
    for wkey in workloads:
        contenders = results.get(wkey, {}).get("contenders", {})
        ours, theirs = contenders.get(ours_key, {}), contenders.get(theirs_key, {})
        if "median_mb_per_s" not in ours or "median_mb_per_s" not in theirs:
            continue
        found.append(
            {
                "workload": wkey,
                "rows": list(pair),
                "mb_per_s": [ours["median_mb_per_s"], theirs["median_mb_per_s"]],
                "throughput_ratio": ours["median_mb_per_s"] / theirs["median_mb_per_s"],
                "cpu_seconds_per_gib": [
                    ours["median_cpu_seconds_per_gib"],
                    theirs["median_cpu_seconds_per_gib"],
                ],
                "cpu_seconds_per_gib_ratio": ours["median_cpu_seconds_per_gib"]
                / theirs["median_cpu_seconds_per_gib"],
            }
        )
    return found


# -- reporting ----------------------------------------------------------------------


VERSIONS = (
    *("aqueuepipe", "aiobotocore", "botocore", "aiohttp", "boto3", "s3transfer"),
    *("obstore", "s3fs", "fsspec", "moto", "werkzeug", "matplotlib"),
)


HEADER = [
    "workload",
    "contender",
    "MB/s",
    "objects/s",
    "x ceiling",
    "aqueuepipe x",
    "client CPU s/GiB",
    "peak RSS growth MiB",
    "server CPU s/GiB",
    "validating: MB/s",
    "validating: aqueuepipe x",
    "validating: client CPU s/GiB",
]


def _label(key: str, entry: dict[str, Any], stats: dict[str, Any]) -> str:
    if not key.startswith("aqueuepipe") or entry.get("generated"):
        return str(stats["label"])
    call = "copy()" if entry["objects"] == 1 else "copy_many()"
    if key == "aqueuepipe_server":
        return f"aqueuepipe {call}: server-side"
    stream = f"aqueuepipe {call[:-1]}server_side=False"
    if key == "aqueuepipe_crc32":
        return f"{stream}, checksum_algorithm='crc32') (not a target row)"
    if BY_KEY[key].kind == "defaults":
        return f"{stream}), defaults"
    return f"{stream})"


def _validating_cells(stats: dict[str, Any] | None) -> list[str]:
    """The validating server's columns of a row: blank where the row did not run there."""
    if not stats or "median_mb_per_s" not in stats:
        return ["failed" if stats else "", "", ""]
    return [
        f"{stats['median_mb_per_s']:.0f}",
        f"{stats['aqueuepipe_ratio']:.2f}x" if "aqueuepipe_ratio" in stats else "",
        f"{stats['median_cpu_seconds_per_gib']:.2f}",
    ]


def _rows(
    results: dict[str, Any], validating: dict[str, Any] | None = None
) -> Iterator[list[str] | None]:
    """Table rows; None starts a new workload."""
    for wkey, entry in results.items():
        yield None
        name = f"{wkey}: {entry['label']}"
        there = (validating or {}).get(wkey, {}).get("contenders", {})
        for key, stats in entry["contenders"].items():
            label = _label(key, entry, stats)
            if "not_installed" in stats:
                yield [name, label, "not installed", *[""] * 9]
                continue
            if "median_mb_per_s" not in stats:
                yield [name, label, "failed", *[""] * 6, *_validating_cells(there.get(key))]
                continue
            server = stats["median_server_cpu_seconds_per_gib"]
            yield [
                name,
                label + (f" ({stats['failed_rounds']} failed)" if stats["failed_rounds"] else ""),
                f"{stats['median_mb_per_s']:.0f}",
                f"{stats['median_objects_per_s']:.1f}",
                f"{stats['ratio_to_ceiling']:.2f}x" if "ratio_to_ceiling" in stats else "",
                f"{stats['aqueuepipe_ratio']:.2f}x" if "aqueuepipe_ratio" in stats else "",
                f"{stats['median_cpu_seconds_per_gib']:.2f}",
                f"{stats['median_rss_growth_mib']:.0f}",
                f"{server:.2f}" if server is not None else "-",
                *_validating_cells(there.get(key)),
            ]
            if key == "parts" or (key == "put" and "parts" not in entry["contenders"]):
                ceiling = entry["ceiling"]
                if ceiling is not None:
                    value = ceiling["value"]
                    yield [
                        name,
                        f"ceiling: min(GET, best ingest), {ceiling['bound_by']}-bound",
                        "" if ceiling["unit"] == "objects/s" else f"{value:.0f}",
                        f"{value:.1f}" if ceiling["unit"] == "objects/s" else "",
                        "1.00x",
                        *[""] * 7,
                    ]


def print_report(report: dict[str, Any]) -> None:
    params = report["parameters"]
    title = (
        f"aqueuepipe benchmark suite: median of {params['rounds']} round(s); "
        f"{params['part_size'] // MIB} MiB parts, {params['part_concurrency']} per object; "
        f"'aqueuepipe x' = aqueuepipe's throughput / the row's (streamed: "
        f"copy(server_side=False)'s; defaults rows: its defaults row's; server-side rows: "
        f"its server-side copy's); 'validating': moto refusing wrong digests, as S3 does"
    )
    rows = list(_rows(report["results"], report.get("validating_results")))
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        body = [row for row in rows if row is not None]
        widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(HEADER)]
        print(title)
        print("  ".join(h.ljust(w) for h, w in zip(HEADER, widths, strict=True)))
        for row in body:
            print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
    else:
        table = Table(title=title)
        for i, h in enumerate(HEADER):
            table.add_column(h, justify="left" if i < 2 else "right")
        first = True
        for row in rows:
            if row is None:
                if not first:
                    table.add_section()
                first = False
            else:
                table.add_row(*row)
        Console(width=None if sys.stdout.isatty() else 160).print(table)
    for key, reason in report["not_installed"].items():
        print(f"{key}: not installed: {reason}")
    machine = report["machine"]
    print(
        f"{machine['cpu_model']}, {machine['nproc']} CPUs, Python {machine['python']}; "
        f"{report['elapsed_seconds']:.0f} s in all; load average "
        f"{machine['loadavg_before'][0]:.1f} before, {machine['loadavg_after'][0]:.1f} after"
    )
    for check in report["targets"]:
        verdict = "met" if check["met"] else "MISSED"
        print(f"target {check['workload']}: {check['target']}: {check['measured']}, {verdict}")
    charts = report.get("charts")
    if isinstance(charts, list):
        for path in charts:
            print(f"chart: {path}")
    else:
        print(f"charts: {charts}")


def report_markdown(report: dict[str, Any]) -> str:
    """The table as GitHub markdown, for benchmarks/README.md."""
    return markdown_table(HEADER, _rows(report["results"], report.get("validating_results")))
