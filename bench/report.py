"""Writes the summary of bench/results/*.json into bench/README.md, between its markers.

The last step of ``bash bench/run.sh``; the rest of bench/README.md is written by hand. The
summary itself is made by tests/support/bench_summary.py, which the tests check.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tests.support.bench_summary import README, RESULTS, replace_block, summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS, help="the results folder")
    parser.add_argument("--readme", type=Path, default=README, help="the page to write into")
    args = parser.parse_args(argv)
    block = summary(args.results)
    args.readme.write_text(replace_block(args.readme.read_text(), block))
    print(block)


if __name__ == "__main__":
    main()
