"""The ``heatmaploc`` command: thin subcommands over the library, one module each
(``heatmaploc.cli.<command>``: ``add(subparsers)`` and ``run(args) -> int``);
``main(argv) -> int``.

User errors (``ValueError``, ``FileNotFoundError``) and refusals of the file system
(``OSError``) become one line on stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from heatmaploc._version import __version__
from heatmaploc.cli import benchmark, evaluate, export, finetune, info, merge, predict, simulate, train
from heatmaploc.keyvalues import parse_overrides

COMMANDS = (simulate, info, train, finetune, predict, evaluate, benchmark, export, merge)

__all__ = ["main", "build_parser", "parse_overrides"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="heatmaploc", description="Localize point sources in 2-D field images.")
    parser.add_argument("--version", action="version", version=f"heatmaploc {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except ModuleNotFoundError as err:  # an optional dependency this command needs
        from heatmaploc.shipped import missing_extra_message

        message = missing_extra_message(err)
        if message is None:
            raise
        print(f"heatmaploc {args.command}: error: {message}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError) as err:
        print(f"heatmaploc {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # the file system refused a write or read the checks could not foresee
        where = f"{err.filename}: " if err.filename else ""
        print(f"heatmaploc {args.command}: error: {where}{err.strerror or err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"heatmaploc {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
