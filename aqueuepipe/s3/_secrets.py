"""Credentials kept out of text shown to users: the one redaction policy.

Error messages (:mod:`aqueuepipe.s3._translate`) and everything the command prints
(:mod:`aqueuepipe.cli`) pass foreign text through :func:`redact`, which removes
what a credential can look like there: the ``user:password@`` part of a URL, AWS
access key ids (their shape is fixed), and the values of the AWS credential
environment variables wherever they appear.
"""

from __future__ import annotations

import os
import re
from typing import Final

__all__ = ["REDACTED", "redact"]

#: What stands where a credential was.
REDACTED: Final = "<redacted>"

# user:password@ in any URL-looking text.
_USERINFO_RE: Final = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@]+@")
# Access key ids have a fixed shape; secret keys and tokens are caught by value.
_ACCESS_KEY_ID_RE: Final = re.compile(r"\b(?:AKIA|ASIA|AIDA|AROA)[A-Z0-9]{16}\b")
_CREDENTIAL_VARIABLES: Final = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
)
# Shorter values (test fakes such as "testing") would redact ordinary words.
_MIN_SECRET_LENGTH: Final = 16


def redact(text: str) -> str:
    """``text`` without URL userinfo, access key ids, or the configured credentials.

    The values of the AWS credential variables are read from the environment at
    each call, so a credential set after import is caught too.
    """
    text = _USERINFO_RE.sub(r"\g<scheme>", text)
    text = _ACCESS_KEY_ID_RE.sub(REDACTED, text)
    for name in _CREDENTIAL_VARIABLES:
        value = os.environ.get(name, "")
        if len(value) >= _MIN_SECRET_LENGTH:
            text = text.replace(value, REDACTED)
    return text
