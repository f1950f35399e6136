"""What the benchmark suite (bench_suite.py) runs: its sizes and settings, the
contenders (``CONTENDERS`` and the tables derived from them) and the workloads.

Imports neither the measuring nor the reporting side of the suite.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
MB = 1_000_000

PART_SIZE = 8 * MIB
PART_CONCURRENCY = 4
BATCH = 16
LIMIT = 30_000_000
SAMPLE_INTERVAL = 0.05
WARM_SIZE = 64 * KIB
SRC_BUCKET = "suite-src"
DST_BUCKET = "suite-dst"

STREAM_CHUNK = 64 * KIB
STREAM_SEED = 14

# Not targets: aqueuepipe as it comes against boto3 as it comes, printed apart.
DEFAULTS_SUFFIX = "-defaults"
DEFAULTS_PAIR = ("aqueuepipe-defaults", "boto3-defaults")
# The rows that also run on the validating server (on the workloads that have it).
VALIDATING_ROWS = ("aqueuepipe", "boto3", *DEFAULTS_PAIR)


@dataclass(frozen=True, slots=True)
class Contender:
    key: str
    label: str
    # "read", "ingest" (the ceiling's parts), "copy" (streamed through the client),
    # "server_side" (a copy the server makes), or not a target row: "variant" (an
    # aqueuepipe option) or "defaults" (a library with no settings of the suite's)
    kind: str
    module: str | None = None  # what it imports, probed before the run
    install: str = ""

    @property
    def family(self) -> str:
        """The contender whose library and interpreter this row uses."""
        return self.key.removesuffix(DEFAULTS_SUFFIX)

    def with_defaults(self) -> Contender:
        """The same library called with its defaults."""
        return replace(
            self, key=self.key + DEFAULTS_SUFFIX, label=f"{self.label}, defaults", kind="defaults"
        )


_EQUAL_SETTINGS = (
    Contender("get", "ceiling: GET, read to the end", "read"),
    Contender("put", "ceiling: PutObject from memory", "ingest"),
    Contender("parts", f"ceiling: UploadPart x{PART_CONCURRENCY} from memory", "ingest"),
    Contender("aqueuepipe", "aqueuepipe, server_side=False", "copy"),
    Contender("aqueuepipe_crc32", "aqueuepipe, checksum_algorithm='crc32'", "variant"),
    Contender("boto3", "boto3 upload_fileobj", "copy", "boto3", "pip install boto3"),
    Contender("aqueuepipe_server", "aqueuepipe, server-side", "server_side"),
    Contender(
        "boto3_copy", "boto3 copy(): server-side", "server_side", "boto3", "pip install boto3"
    ),
    Contender(
        "aioboto3",
        "aioboto3 upload_fileobj",
        "copy",
        "aioboto3",
        "python3 -m venv /tmp/aioboto3-venv && /tmp/aioboto3-venv/bin/pip install aioboto3"
        " (it pins aiobotocore exactly, so not beside aqueuepipe)",
    ),
    Contender(
        "obstore",
        "obstore get -> open_writer",
        "copy",
        "obstore",
        "pip install obstore, or into /tmp/obstore-venv",
    ),
    Contender(
        "s3fs",
        "s3fs open(rb) -> open(wb)",
        "copy",
        "s3fs",
        "pip install s3fs, or into /tmp/s3fs-venv",
    ),
)
# s3fs has none: how to move bytes from one file object to the other is the caller's.
CONTENDERS = (
    *_EQUAL_SETTINGS,
    *(
        c.with_defaults()
        for c in _EQUAL_SETTINGS
        if c.key in ("aqueuepipe", "boto3", "aioboto3", "obstore")
    ),
)
BY_KEY = {c.key: c for c in CONTENDERS}
KEY_WIDTH = max(len(key) for key in BY_KEY)
COPIERS = tuple(c.key for c in CONTENDERS if c.kind == "copy")
DEFAULTS = tuple(c.key for c in CONTENDERS if c.kind == "defaults")
SERVER_SIDE = tuple(c.key for c in CONTENDERS if c.kind == "server_side")
# The aqueuepipe row each kind of row is compared with ("aqueuepipe x").
REFERENCE = {
    "copy": "aqueuepipe",
    "defaults": "aqueuepipe" + DEFAULTS_SUFFIX,
    "server_side": "aqueuepipe_server",
}
# What the copy rows call on the stream workload (_suite_client.STREAM_CONTENDERS).
STREAM_LABELS = (
    ("aqueuepipe", "aqueuepipe copy(generator, url)"),
    ("boto3", "boto3 upload_fileobj(os.pipe reader)"),
    ("aioboto3", "aioboto3 upload_fileobj(async reader)"),
    ("obstore", "obstore put_async(generator)"),
    ("s3fs", "s3fs open(wb).write per chunk"),
)


@dataclass(frozen=True, slots=True)
class Workload:
    key: str
    label: str
    objects: tuple[tuple[str, int], ...]  # (source key, size)
    batch: int
    ceilings: tuple[str, ...]  # which ceiling rows run
    per_object: bool = False  # report objects/s as its throughput
    verify_md5: int = -1  # how many copies to download and check in round 1 (-1: all)
    variants: tuple[str, ...] = ()  # informative rows, not in the targets
    keep_rss_series: bool = False  # VmRSS over time, in the JSON and the memory chart
    required_limit: int | None = None  # a memory limit the workload is about (defaults pass it)
    generated: bool = False  # the sources are streams made in the client, not objects
    defaults: bool = True  # whether the -defaults rows run
    labels: tuple[tuple[str, str], ...] = ()  # contender labels of its own
    server_side: bool = False  # whether the server-side rows run
    validating: bool = False  # whether VALIDATING_ROWS also run on the validating server

    @property
    def total_bytes(self) -> int:
        return sum(size for _, size in self.objects)

    def contenders(self, server: str = "plain") -> tuple[str, ...]:
        every = (
            *self.ceilings,
            *COPIERS,
            *(DEFAULTS if self.defaults else ()),
            *self.variants,
            *(SERVER_SIDE if self.server_side else ()),
        )
        if server == "plain":
            return every
        return tuple(key for key in every if key in VALIDATING_ROWS) if self.validating else ()

    def label_of(self, key: str) -> str:
        return dict(self.labels).get(key, BY_KEY[key].label)


def _mixed_sizes(count: int, low: int, high: int) -> list[int]:
    # Deterministic, not MiB-aligned, so that last parts are partial.
    rng = random.Random(20261125)
    return [rng.randint(low, high) for _ in range(count)]


def workloads(smoke: bool) -> dict[str, Workload]:
    big = 10 * MIB if smoke else 100 * MIB
    mixed = _mixed_sizes(4, 1 * MIB, 12 * MIB) if smoke else _mixed_sizes(32, 1 * MIB, 25 * MIB)
    small = 20 if smoke else 1000
    memory = 4 if smoke else 16
    big_key = f"big/{big}.bin"
    return {
        "big": Workload(
            "big",
            f"1 x {big // MIB} MiB",
            ((big_key, big),),
            1,
            ("get", "put", "parts"),
            variants=("aqueuepipe_crc32",),
            server_side=True,
            validating=True,
        ),
        "mixed": Workload(
            "mixed",
            f"{len(mixed)} x 1-{max(mixed) // MIB + 1} MiB",
            tuple((f"mixed/{i:03d}.bin", size) for i, size in enumerate(mixed)),
            BATCH,
            ("get", "put", "parts"),
            variants=("aqueuepipe_crc32",),
            server_side=True,
            validating=True,
        ),
        "small": Workload(
            "small",
            f"{small:,} x 64 KiB",
            tuple((f"small/{i:05d}.bin", 64 * KIB) for i in range(small)),
            BATCH,
            ("get", "put"),
            per_object=True,
        ),
        "memory": Workload(
            "memory",
            f"{memory} x {big // MIB} MiB at once, 30 MB limit",
            tuple((big_key, big) for _ in range(memory)),
            memory,
            (),
            verify_md5=2,
            keep_rss_series=True,
            required_limit=LIMIT,
        ),
        "stream": Workload(
            "stream",
            f"1 x {big // MIB} MiB async generator, {STREAM_CHUNK // KIB} KiB chunks",
            ((f"stream/{big}.bin", big),),
            1,
            (),
            generated=True,
            defaults=False,
            labels=STREAM_LABELS,
            validating=True,
        ),
    }
