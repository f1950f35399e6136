"""What the command tells its user: the help texts of ``aqueuepipe``, ``cp``, ``sync``
and ``demo``, the defaults they quote and the exit statuses they promise.

Kept apart from the parser so that the words can be read, and changed, in one place.
"""

from __future__ import annotations

#: Exit status when a copy failed, for a usage error, after Ctrl-C (128 + SIGINT)
#: and after SIGTERM (128 + SIGTERM), as a shell reports a process those signals ended.
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

DEFAULT_LIMIT = "256MiB"
DEFAULT_PART_SIZE = "8MiB"

DESCRIPTION = """\
Copy S3 objects by streaming them, many at once, under one memory limit.

Bytes flow from the source to the destination without ever being held whole:
a batch of copies never buffers more than --limit bytes in all.  Hashes are
computed while the bytes pass, and every part is checked against the ETag the
server returns for it."""

EPILOG = """\
examples:
  aqueuepipe cp s3://src-bucket/data.bin s3://dst-bucket/data.bin
  aqueuepipe cp --recursive --limit 100MB s3://src-bucket/logs/ s3://dst-bucket/logs/
  aqueuepipe cp ./disk.img s3://bucket/images/
  pg_dump db | aqueuepipe cp - s3://bucket/db.sql
  aqueuepipe sync s3://src-bucket/logs/ s3://dst-bucket/logs/ --delete --dry-run
  aqueuepipe demo

Run 'aqueuepipe cp --help' for the options of a copy.  Credentials and region
come from the usual AWS settings (environment variables, ~/.aws/config, an
instance role); set AWS_ENDPOINT_URL, or pass --endpoint-url, for an
S3-compatible server."""

CP_DESCRIPTION = """\
Copy SRC to DST by streaming.  Either may be an s3://bucket/key URL or a local
path, and at least one of them is an S3 URL: bucket to bucket, upload, or
download.  Objects of --part-size or more are copied in parts, uploaded while
the source still streams.

With --recursive, SRC is a prefix (s3://bucket/dir/) or a local directory and
everything below it is copied, keeping the relative paths under DST.  Without
it, a DST that ends in '/' (or an existing local directory) receives the object
under its own name.

'-' as SRC reads standard input (of any length) into the object DST; as DST it
writes the object SRC to standard output, and then the progress, the summary
and --json go to standard error.  A file named '-' is './-'."""

CP_EPILOG = """\
sizes:
  30MB, 1.5GB       powers of 1000 (KB, MB, GB, TB)
  64MiB, 8MiB       powers of 1024 (KiB, MiB, GiB, TiB)
  30_000_000, 1024  bytes

examples:
  copy one object between buckets (or endpoints, with AWS_ENDPOINT_URL):
    aqueuepipe cp s3://src-bucket/data.bin s3://dst-bucket/data.bin
  copy a prefix, 32 objects at a time, holding at most 100 MB:
    aqueuepipe cp -r --concurrency 32 --limit 100MB s3://src/logs/ s3://dst/logs/
  upload a directory, and download an object, with SHA-256 hashes:
    aqueuepipe cp -r ./photos s3://bucket/photos/ --checksum sha256
    aqueuepipe cp s3://bucket/photos/cat.jpg ./cat.jpg --checksum md5 --checksum sha256
  machine-readable results, one JSON object a line:
    aqueuepipe cp -r s3://src/logs/ s3://dst/logs/ --json > results.jsonl
  stream standard input into an object, and an object to standard output:
    pg_dump db | aqueuepipe cp - s3://bucket/db.sql
    aqueuepipe cp s3://bucket/backup.tar - | tar x

exit status: 0 all copies succeeded, 1 a copy failed (or standard output was
closed early), 2 usage error, 130 interrupted (SIGINT), 143 terminated
(SIGTERM)."""

SYNC_DESCRIPTION = """\
Make DST hold what SRC holds: copy every object under the prefix or directory
SRC that DST does not already have, keeping the relative paths.  SRC and DST are
prefixes (s3://bucket/logs means logs/) or directories; an object, a file or '-'
is a usage error (use cp).

What to copy is decided from the two listings, with no request per object: an
object is already there when DST has one of the same size and ETag (copies keep
their source's part layout, so their ETag); between a file and an object, when
the destination has the source's size and is not older.  --size-only compares
sizes alone; --checksum compares content (one HeadObject per object of the same
size).  The summary counts the objects copied, skipped (already there) and, with
--delete, deleted; with --json, each result says whether it was skipped, planned
or deleted.

--delete removes what DST holds and SRC does not, once every copy succeeded.
--dry-run writes and deletes nothing: it prints one '(dry run) copy: SRC -> DST'
or '(dry run) delete: DST' line per change it would make, and what it would copy
and delete.  --exclude and --include (aws cli's rules) match the key relative to
SRC ('*' crossing '/'); every key is included unless a filter matches it, and
the last filter that matches decides.  A key left out is neither copied nor
deleted.  The hashes of cp's --checksum ALGO are sync's --hash ALGO."""

SYNC_EPILOG = """\
examples:
  mirror a prefix; run it again and it copies only what changed:
    aqueuepipe sync s3://src/logs/ s3://dst/logs/
  see what a mirror that also deletes would do, leaving out *.tmp; then do it:
    aqueuepipe sync s3://src/logs/ s3://dst/logs/ --delete --dry-run --exclude '*.tmp'
    aqueuepipe sync s3://src/logs/ s3://dst/logs/ --delete --exclude '*.tmp'
  only the text files (the later filter wins):
    aqueuepipe sync s3://src/docs/ s3://dst/docs/ --exclude '*' --include '*.txt'
  download a prefix, or upload a directory, where it is missing or differs:
    aqueuepipe sync s3://bucket/photos/ ./photos
    aqueuepipe sync ./photos s3://bucket/photos/ --checksum

On a cluster (--scheduler, --dask) sync copies what is missing or differs, as
'cp -r' skipping what is there; --delete, --dry-run, the filters, --checksum and
--size-only are not supported there.

exit status: 0 all copies (and deletions) succeeded, 1 one failed, 2 usage
error, 130 interrupted (SIGINT), 143 terminated (SIGTERM)."""

DEMO_DESCRIPTION = """\
Start an S3 server (moto) inside this process on a free loopback port, create
two buckets and objects of 1, 5, 20 and 100 MB, copy them all at once under a
30 MB memory limit with progress bars, verify every MD5 and SHA-256 against the
original bytes and read every copy back, then print a table of sizes,
throughput and peak memory.  It never talks to AWS.  Exits 0 when every object
verified, 1 otherwise."""
