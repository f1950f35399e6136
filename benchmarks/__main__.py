"""``python -m benchmarks [OPTIONS]``: the benchmark suite (bench_suite.py).

``python -m benchmarks NAME [OPTIONS]`` runs ``benchmarks/bench_NAME.py`` instead
(``pipe``, ``copy``, ...), exactly as ``python benchmarks/bench_NAME.py`` would.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    # The scripts import their helpers (_server, _charts) as top-level modules, as
    # they do when run as files.
    sys.path.insert(0, str(HERE))
    if len(sys.argv) > 1 and (HERE / f"bench_{sys.argv[1]}.py").is_file():
        script = HERE / f"bench_{sys.argv.pop(1)}.py"
    else:
        script = HERE / "bench_suite.py"
    sys.argv[0] = str(script)
    runpy.run_path(str(script), run_name="__main__")


main()
