"""The ``aqueuepipe`` command: ``aqueuepipe cp``, ``aqueuepipe sync`` and ``aqueuepipe demo``.

Exit status: 0 when every copy succeeded, 1 when any failed, 2 for a usage error
(a bad option, size or URL, found before anything is copied), 130 when
interrupted with Ctrl-C (SIGINT), 143 when terminated (SIGTERM: ``kill``,
``timeout``, ``docker stop``); either signal cancels the copies, which clean up
(abort their uploads, remove their temporary files) before the command exits.
Every copy of ``cp`` goes through :func:`~aqueuepipe.copy_many`, a single object
being a batch of one; ``sync`` runs :func:`~aqueuepipe.sync` (decided from the two
listings, with ``--delete``, ``--dry-run``, ``--exclude``/``--include``,
``--checksum`` and ``--size-only``), or ``copy_prefix`` with ``skip_existing`` on a
cluster.  ``-`` as SRC is standard input, as DST standard output (not for sync).

Nothing printed ever holds credentials: messages name objects, never keys,
tokens or the userinfo part of a URL.  Nothing printed drives the terminal:
object names and messages have their control characters escaped.
"""

from __future__ import annotations

from .._report import failure_message, peak_rss, print_failure, result_json
from ..s3._secrets import redact
from ._main import main
from ._parser import build_parser

__all__ = [
    "build_parser",
    "failure_message",
    "main",
    "peak_rss",
    "print_failure",
    "redact",
    "result_json",
]
