"""Task runner: the same sessions run locally and in CI (.ci/run)."""

from __future__ import annotations

import os

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True
nox.options.sessions = ["tests", "lint", "typecheck"]

PYTHON = os.environ.get("AQUEUEPIPE_PYTHON") or None  # None: the interpreter running nox


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the test suite against a real moto server process (one per worker: the
    tests are spread over the machine's cores, at most 4; pass -n 0 to run them in
    one process)."""
    session.install("-e", ".[test,dask]")
    session.run("pytest", "-n", "auto", "--maxprocesses", "4", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package."""
    session.install("-e", ".[dev,test,dask]")
    session.run("mypy", "--strict", "aqueuepipe")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Run the benchmarks (pass --smoke for the tiny CI variant)."""
    session.install("-e", ".[bench,dask]")
    args = session.posargs
    for script in sorted(os.listdir("benchmarks")):
        if script.startswith("bench_") and script.endswith(".py"):
            session.run("python", f"benchmarks/{script}", *args)


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """Copy objects through an S3 server embedded in the process, verify them, print a table."""
    session.install("-e", ".[demo]")
    session.run("aqueuepipe", "demo", *session.posargs)
