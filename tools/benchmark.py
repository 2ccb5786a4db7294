"""Thin wrapper: `python tools/benchmark.py ...` == `heatmaploc benchmark ...`."""
import sys

from heatmaploc.cli import main

if __name__ == "__main__":
    sys.exit(main(["benchmark", *sys.argv[1:]]))
