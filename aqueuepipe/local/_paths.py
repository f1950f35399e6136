"""Where a downloaded object lands: :func:`safe_join` maps an S3 key to a path under
the download directory and refuses, with a ``ValueError`` naming the key, every key
that would land outside it or collide with another key's file."""

from __future__ import annotations

import os
from pathlib import Path


def safe_join(root: Path, relative_key: str) -> Path:
    """Return the path under ``root`` for ``relative_key``, an S3 key relative to it.

    The key is split on ``/`` and every segment must be a plain name.  Refused,
    with a ``ValueError`` naming the key:

    - an empty key, and a key with a NUL character;
    - an absolute key (``/etc/passwd``) and one whose first segment starts with a
      drive letter (``C:/x``, ``c:x``), on every platform, so that a prefix
      downloads the same way everywhere;
    - ``..`` segments, wherever they point (``../x``, ``a/../../x``, and also
      ``a/../b``);
    - ``.`` and empty segments (``a/./b``, ``a//b``, and a trailing ``/`` such as
      the ``dir/`` folder markers some tools create): these would silently map
      distinct keys to the same file (``a/./b``, ``a//b`` and ``a/b`` are three
      different S3 objects), so one download would overwrite another;
    - on Windows, segments containing ``\\`` or ``:``;
    - a key whose path, with symbolic links resolved, is not inside ``root``
      resolved (a symbolic link under ``root`` pointing elsewhere).

    The target need not exist.  The result is ``root`` joined with the segments,
    not resolved.
    """
    reason = _unsafe_key_reason(relative_key)
    if reason is None:
        candidate = root.joinpath(*relative_key.split("/"))
        resolved_root = root.resolve()
        resolved = candidate.resolve()
        if resolved != resolved_root and resolved.is_relative_to(resolved_root):
            return candidate
        reason = f"resolves to {resolved}, outside {resolved_root}"
    raise ValueError(f"unsafe key {relative_key!r}: {reason}")


def _unsafe_key_reason(key: str) -> str | None:
    if not key:
        return "it is empty"
    if "\0" in key:
        return "it contains a NUL character"
    if key.startswith("/"):
        return "it is an absolute path"
    if key.endswith("/"):
        return "it ends with '/' (a folder marker, not a file)"
    segments = key.split("/")
    first = segments[0]
    if len(first) >= 2 and first[1] == ":" and first[0].isascii() and first[0].isalpha():
        return "it starts with a drive letter"
    for segment in segments:
        if not segment:
            return "it has an empty segment ('//')"
        if segment in (".", ".."):
            return f"it has a {segment!r} segment"
        if os.name == "nt" and ("\\" in segment or ":" in segment):
            return f"its segment {segment!r} contains '\\' or ':'"
    return None
