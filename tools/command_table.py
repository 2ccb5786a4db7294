"""Write the command table of docs/usage.md from the argparse definitions
(:mod:`heatmaploc.cli.reference`); ``--check`` exits 1 when the docs have drifted.

    python tools/command_table.py [--check]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from heatmaploc.atomic import atomic_write_text
from heatmaploc.cli.reference import replace_table

USAGE_DOC = Path(__file__).resolve().parents[1] / "docs" / "usage.md"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report whether the table is current")
    args = parser.parse_args()
    text = USAGE_DOC.read_text()
    current = replace_table(text)
    if args.check:
        if current != text:
            print(f"{USAGE_DOC}: the command table differs from the CLI; run python tools/command_table.py")
            return 1
        print(f"{USAGE_DOC}: the command table is current")
        return 0
    atomic_write_text(USAGE_DOC, current)
    print(f"wrote the command table of {USAGE_DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
