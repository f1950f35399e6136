"""What every benchmark shares: the machine it ran on, readings of a process, the report.

Only the standard library is imported at the top: ``_measure.py`` imports this module
under an interpreter of its own (the aioboto3 venv), where nothing else is installed.
"""

from __future__ import annotations

import asyncio
import datetime
import gc
import importlib.metadata
import json
import os
import platform
import resource
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse

RESULTS = Path(__file__).resolve().parent / "results"

# -- the machine ----------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    """Platform, Python, CPU model, CPUs available, memory and the load average."""
    cpu_model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        nproc = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        nproc = os.cpu_count() or 0
    memory = ""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            memory = f"{int(f.readline().split()[1]) / (1024 * 1024):.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "cpu_model": cpu_model,
        "nproc": nproc,
        "memory": memory,
        "event_loop": "asyncio (stock)",
        "loadavg_before": list(os.getloadavg()),
    }


def versions(*names: str) -> dict[str, str]:
    """The installed version of each distribution in ``names``, or "not installed"."""
    found = {}
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def probe_versions(
    python: str, module: str, names: Sequence[str], env: dict[str, str]
) -> tuple[str | None, dict[str, str]]:
    """(None, the version of each of ``names``) if ``python`` imports ``module``, else
    (why not, {})."""
    import subprocess

    code = (
        f"import json, importlib.metadata as m; import {module}; "
        f"print(json.dumps({{n: m.version(n) for n in {tuple(names)!r}}}))"
    )
    try:
        done = subprocess.run(
            [python, "-c", code], env=env, capture_output=True, text=True, timeout=120
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{python} does not run: {exc}", {}
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        return f"{python} cannot import {module}: {last}", {}
    found: dict[str, str] = json.loads(done.stdout)
    return None, found


# -- readings of a process (Linux /proc) ----------------------------------------------


def status_kib(*names: str) -> dict[str, int]:
    """Fields of ``/proc/self/status`` (``VmRSS``, ``VmHWM``...), in KiB."""
    found: dict[str, int] = {}
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in names:
                found[name] = int(value.split()[0])
    return found


def reset_peak() -> dict[str, int]:
    """Collect garbage and make the peak RSS the current one; ``VmRSS`` and ``VmHWM`` after."""
    gc.collect()
    with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
        f.write("5")  # VmHWM := VmRSS
    return status_kib("VmRSS", "VmHWM")


def check_size(got: int, size: int) -> None:
    """Refuse a transfer that moved ``got`` (bytes, objects) where it should have moved ``size``."""
    if got != size:
        raise RuntimeError(f"transferred {got}, expected {size}")


async def read_to_end(client: Any, bucket: str, key: str, buf: memoryview) -> int:
    """GetObject of ``bucket/key`` by hand on ``client``, the body read to its end into
    ``buf`` (reused, so discarded). Returns the number of bytes read."""
    response = await client.get_object(Bucket=bucket, Key=key)
    body = response["Body"]
    total = 0
    try:
        while n := await body.readinto(buf):
            total += n
    finally:
        body.close()
    return total


async def upload_in_parts(
    client: Any, bucket: str, key: str, body: bytes, part_size: int, concurrency: int
) -> int:
    """A multipart upload of ``body``, already in memory, made by hand on ``client``:
    ``concurrency`` UploadParts of ``part_size`` at once, each sliced when it is sent.
    Returns the number of parts."""
    created = await client.create_multipart_upload(Bucket=bucket, Key=key)
    upload_id = created["UploadId"]
    slots = asyncio.Semaphore(concurrency)
    etags: dict[int, str] = {}

    async def send(number: int, offset: int) -> None:
        async with slots:
            response = await client.upload_part(
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=body[offset : offset + part_size],
            )
        etags[number] = response["ETag"]

    async with asyncio.TaskGroup() as tg:
        for number, offset in enumerate(range(0, len(body), part_size), 1):
            tg.create_task(send(number, offset))
    await client.complete_multipart_upload(
        Bucket=bucket,
        Key=key,
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etags[n]} for n in sorted(etags)]},
    )
    return len(etags)


def cpu_seconds() -> float:
    """User + system CPU of this process so far (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU process ``pid`` has used so far; None if it cannot be read."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return None
    # Fields 14 and 15 of stat (utime, stime), counted after "pid (comm)".
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Meter:
    """Times the block given to :meth:`timed`; its readings end up in ``result``.

    The client processes (``_measure.py``, ``_suite_client.py``) each measure with a
    subclass: the hooks run at fixed points around the timed block, and
    :meth:`extra` adds readings of their own to ``result``.
    """

    # cProfile's clock (None: its default, wall time).
    profile_clock: Callable[[], float] | None = None

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.result: dict[str, Any] = {}

    def prepare(self) -> None:
        """Before the client's CPU is first read."""

    def started(self) -> None:
        """After the client's CPU is first read, before the profiler starts."""

    def stopped(self) -> None:
        """After the client's CPU is read again."""

    def dumped(self, path: str) -> None:
        """After the profile of the timed block is written to ``path``."""

    def extra(self, before: dict[str, int]) -> dict[str, Any]:
        """Readings added to ``result``; ``before`` holds VmRSS and VmHWM before."""
        return {}

    @contextmanager
    def timed(self) -> Iterator[None]:
        profiler = None
        if self.spec.get("profile"):
            import cProfile

            clock = self.profile_clock
            profiler = cProfile.Profile() if clock is None else cProfile.Profile(clock)
        before = reset_peak()
        server_before = process_cpu_seconds(self.spec.get("server_pid"))
        self.prepare()
        cpu_before = cpu_seconds()
        self.started()
        if profiler is not None:
            profiler.enable()
        start = time.perf_counter()
        yield
        seconds = time.perf_counter() - start
        if profiler is not None:
            profiler.disable()
        cpu = cpu_seconds() - cpu_before
        self.stopped()
        server_after = process_cpu_seconds(self.spec.get("server_pid"))
        after = status_kib("VmRSS", "VmHWM")
        if profiler is not None:
            profiler.dump_stats(self.spec["profile"])
            self.dumped(self.spec["profile"])
        self.result = {
            "seconds": seconds,
            "cpu_seconds": cpu,
            "rss_before_kib": before["VmRSS"],
            "hwm_reset_kib": before["VmHWM"],
            "rss_after_kib": after["VmRSS"],
            "hwm_kib": after["VmHWM"],
            "rss_growth_kib": after["VmHWM"] - before["VmRSS"],
            "server_cpu_seconds": (
                server_after - server_before
                if server_before is not None and server_after is not None
                else None
            ),
            **self.extra(before),
        }


# -- the report -----------------------------------------------------------------------


def add_run_options(parser: argparse.ArgumentParser, name: str, smoke: str) -> None:
    """``--smoke`` (``smoke`` says what the tiny CI run does), ``--output`` (see
    :func:`resolve_output`) and ``--quiet``."""
    parser.add_argument("--smoke", action="store_true", help=f"tiny run for CI: {smoke}")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"JSON results file (default benchmarks/results/{name}.json; none with --smoke)",
    )
    parser.add_argument("--quiet", action="store_true", help="no per-run progress lines")


def parse_with_smoke(
    parser: argparse.ArgumentParser, argv: list[str] | None, smoke: str, **tiny: object
) -> argparse.Namespace:
    """Parse ``argv`` with a ``--smoke`` option (``smoke`` says what the CI run does) that
    sets the options ``tiny`` names, and give this process the fake credentials of the
    moto server the benchmark starts."""
    from aqueuepipe.testing import FAKE_CREDENTIALS

    parser.add_argument("--smoke", action="store_true", help=f"CI: {smoke}")
    args = parser.parse_args(argv)
    if args.smoke:
        vars(args).update(tiny)
    os.environ.update(FAKE_CREDENTIALS)
    return args


def resolve_output(args: argparse.Namespace, name: str) -> None:
    """Without ``--output``, the report goes to benchmarks/results/NAME.json; with
    ``--smoke``, nowhere."""
    if args.output is None and not args.smoke:
        args.output = RESULTS / f"{name}.json"


def report_head(benchmark: str) -> tuple[float, dict[str, Any]]:
    """At the start of a run: (``time.perf_counter()``, the report's first keys: the
    benchmark, the date and :func:`machine_info`, whose load average is the one before)."""
    started = time.perf_counter()
    date = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    return started, {"benchmark": benchmark, "date": date, "machine": machine_info()}


def print_table(
    title: str,
    header: Sequence[str],
    rows: Iterable[Sequence[str] | None],
    *,
    left: int = 0,
    width: int = 120,
) -> None:
    """A table with rich if it is installed, else in plain columns.

    The first ``left`` columns are left-aligned, the others right-aligned.  A row of
    None starts a new section (a rule with rich; nothing in plain text).  Off a
    terminal (CI logs, a file) the table is ``width`` characters wide: rich would
    squeeze it into 80 columns.
    """
    rows = list(rows)
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        body = [row for row in rows if row is not None]
        widths = [max([len(h), *(len(r[i]) for r in body)]) for i, h in enumerate(header)]

        def line(cells: Sequence[str]) -> str:
            return "  ".join(
                cell.ljust(w) if i < left else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
            )

        print(title)
        print(line(header))
        for row in body:
            print(line(row))
        return
    table = Table(title=title)
    for i, h in enumerate(header):
        table.add_column(h, justify="left" if i < left else "right")
    started = False
    for row in rows:
        if row is None:
            if started:
                table.add_section()
        else:
            table.add_row(*row)
            started = True
    Console(width=None if sys.stdout.isatty() else width).print(table)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str] | None]) -> str:
    """A table as GitHub markdown (for benchmarks/README.md); None rows are left out."""
    align = ["---"] * 2 + ["---:"] * (len(header) - 2)
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines.extend(
        "| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |"
        for row in rows
        if row is not None
    )
    return "\n".join(lines)


def print_profile(
    paths: Sequence[str], title: str, orders: Sequence[str], top: int, *, digits: int | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Print the top ``top`` functions of the cProfile dumps ``paths`` (merged) by each of
    ``orders``; return them by order, times rounded to ``digits`` (None: not rounded)."""
    import pstats

    found = {}
    for order in orders:
        print(f"\n{title}, by {order}:")
        pstats.Stats(*paths, stream=sys.stdout).strip_dirs().sort_stats(order).print_stats(top)
        stats = pstats.Stats(*paths)
        stats.sort_stats(order)
        entries = []
        for func in stats.fcn_list[:top]:  # type: ignore[attr-defined]
            calls, _, tottime, cumtime, _ = stats.stats[func]  # type: ignore[attr-defined]
            filename, line, name = func
            entries.append(
                {
                    "function": f"{Path(filename).name}:{line}({name})",
                    "calls": calls,
                    "tottime": tottime if digits is None else round(tottime, digits),
                    "cumtime": cumtime if digits is None else round(cumtime, digits),
                }
            )
        found[order] = entries
    return found


def machine_line(report: dict[str, Any]) -> str:
    """The report's last line: the machine, Python and how long the run took."""
    machine = report["machine"]
    return (
        f"{machine['cpu_model']}, {machine['nproc']} CPUs, Python {machine['python']}, "
        f"{report['elapsed_seconds']:.0f} s in all"
    )


def close_report(report: dict[str, Any], started: float) -> None:
    """At the end of a run: how long it took since ``started`` (``report_head``'s
    clock) and the load average after it, into ``report``."""
    report["elapsed_seconds"] = time.perf_counter() - started
    report["machine"]["loadavg_after"] = list(os.getloadavg())


def finish_report(
    report: dict[str, Any],
    started: float,
    output: Path | None,
    show: Callable[[dict[str, Any]], None],
) -> int:
    """:func:`close_report`, then ``show`` the report and write it to ``output``
    (:func:`write_report`). Returns the exit status, 0."""
    close_report(report, started)
    show(report)
    write_report(report, output)
    return 0


def write_report(report: dict[str, Any], output: Path | None) -> None:
    """Write ``report`` as JSON to ``output`` (its folder made if need be); None: nowhere."""
    if output is None:
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {output}")
