"""`python -m bench`: run the whole benchmark suite and write its report.

    .venv/bin/python -m bench                 # full: ~6 minutes, the real file when present
    .venv/bin/python -m bench --fast          # the test command's reduced run
    .venv/bin/python -m bench --out DIR       # default bench/reports/<UTC timestamp>/

Needs PostgreSQL on 127.0.0.1:5432 (each run gets a fresh database, dropped afterwards) and
cargo (the Rust engine benchmark). Prints the Markdown summary at the end.
"""

import argparse
import sys
import time
from pathlib import Path

from bench import report, suite


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="a few hundred messages per run")
    parser.add_argument("--file", type=Path, default=suite.gateway_bench.DEFAULT_FILE)
    parser.add_argument("--out", type=Path, help="report directory")
    args = parser.parse_args(argv)

    scale = suite.FAST if args.fast else suite.FULL
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = args.out or suite.REPO / "bench" / "reports" / stamp
    result = suite.run(scale, args.file, out)
    markdown = report.write(result, out)
    print(markdown.read_text())
    print(f"report: {out}/report.json, {markdown}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
