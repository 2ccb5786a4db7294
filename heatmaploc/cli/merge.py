"""``heatmaploc merge-predictions``: join the CSVs of ``predict --shard I/N`` runs."""
from __future__ import annotations

import sys


def add(sub) -> None:
    p = sub.add_parser("merge-predictions", help="join the CSVs of predict --shard runs into one")
    p.add_argument("out", metavar="OUT.csv", help="merged CSV to write")
    p.add_argument("parts", nargs="+", metavar="PART", help="the shares' CSVs (each with its .shard.json manifest)")
    p.set_defaults(func=run)


def run(args) -> int:
    from heatmaploc.sharding import merge_parts

    report = merge_parts(args.out, args.parts)
    print(f"merged: {args.out} ({report.rows} rows, {report.images} of {report.total} inputs)")
    if report.missing_shards:
        print(f"heatmaploc merge-predictions: gap: share(s) {', '.join(map(str, report.missing_shards))} missing",
              file=sys.stderr)
    if report.failed:
        shown = ", ".join(report.failed[:5]) + (f" ... +{len(report.failed) - 5}" if len(report.failed) > 5 else "")
        print(f"heatmaploc merge-predictions: gap: {len(report.failed)} image(s) could not be predicted: {shown}",
              file=sys.stderr)
    return 0 if report.complete else 1
