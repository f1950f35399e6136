"""The public names of aqueuepipe agree with __all__."""

from __future__ import annotations

import importlib.metadata
import pathlib

import aqueuepipe


def test_all_lists_every_public_name_and_only_those() -> None:
    public = {
        name
        for name, value in vars(aqueuepipe).items()
        if not name.startswith("_") and not isinstance(value, type(aqueuepipe))
    }
    assert set(aqueuepipe.__all__) == public | {"__version__"}


def test_every_name_in_all_exists() -> None:
    for name in aqueuepipe.__all__:
        assert hasattr(aqueuepipe, name), name


def test_version_matches_installed_metadata() -> None:
    assert importlib.metadata.version("aqueuepipe") == aqueuepipe.__version__


def test_package_ships_py_typed() -> None:
    assert (pathlib.Path(aqueuepipe.__file__).parent / "py.typed").is_file()


def test_library_errors_derive_from_one_base() -> None:
    errors = [
        value
        for value in vars(aqueuepipe).values()
        if isinstance(value, type) and issubclass(value, Exception)
    ]
    assert len(errors) >= 9
    assert all(issubclass(err, aqueuepipe.AqueuepipeError) for err in errors)
