"""The entry point of the ``aqueuepipe`` command: parse the command line, run the
sub-command, and turn what ended it (argparse's exit, Ctrl-C while starting or
ending, a closed standard output) into the exit status."""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence

from ._help import EXIT_FAILED
from ._parser import build_parser
from ._run import discard_stdout, interrupted


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``aqueuepipe`` command with ``argv`` (default: ``sys.argv[1:]``).

    Returns the exit status; the console script passes it to ``sys.exit``.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        status: int = args.run(args)
        return status
    except SystemExit as exc:  # argparse: --help, --version, usage errors
        return _exit_status(exc.code)
    except KeyboardInterrupt:
        # Ctrl-C outside the copies' own handling (while the command starts or
        # ends): there is nothing of theirs to clean up.
        return interrupted(signal.SIGINT)
    except BrokenPipeError:
        # Standard output was closed early (`aqueuepipe cp ... --json | head`).
        # Point it at devnull so the interpreter's final flush does not fail again.
        discard_stdout()
        return EXIT_FAILED


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return EXIT_FAILED
