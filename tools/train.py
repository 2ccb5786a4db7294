"""Thin wrapper: `python tools/train.py ...` == `heatmaploc train ...`."""
import sys

from heatmaploc.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
