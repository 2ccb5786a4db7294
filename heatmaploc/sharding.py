"""Sharded prediction: N processes (or machines, or a job array) each predict one
deterministic share of the inputs; their CSVs are merged into the single-run CSV.

* Shares: the inputs in the order ``heatmaploc predict`` lists them (folders expanded
  and sorted), dealt round-robin: share ``I`` of ``N`` (1-based) holds inputs
  ``I-1, I-1+N, I-1+2N, ...``.  Every process given the same arguments sees the same
  list, so the shares are disjoint and cover it.
* Each share's CSV gets a manifest beside it (``PART.csv.shard.json``): the share, the
  total number of inputs, and per input its position in the full list, its output name
  and whether it was predicted.  Images with no source have no CSV row; the manifest
  still lists them, so a merge can tell "no source" from "not predicted".
* :func:`merge_parts` joins the parts in the full list's order (byte for byte the CSV a
  single run writes), refusing parts of different runs (share counts, headers, input
  totals), a share or an image given twice; missing shares and images that failed are
  reported as gaps.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence, TypeVar

from heatmaploc.atomic import atomic_write_bytes

T = TypeVar("T")
MANIFEST_SUFFIX = ".shard.json"


@dataclass(frozen=True)
class Shard:
    """Share ``index`` (1-based) of ``count``."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> "Shard":
        """``"I/N"`` with ``1 <= I <= N``."""
        try:
            i, n = (int(v) for v in str(text).split("/"))
        except ValueError:
            raise ValueError(f"--shard {text!r}: expected I/N, e.g. 2/4 (the 2nd of 4 shares)") from None
        if not 1 <= i <= n:
            raise ValueError(f"--shard {text!r}: I must be in 1..N (got I={i}, N={n})")
        return cls(i, n)

    def take(self, items: Sequence[T]) -> list[tuple[int, T]]:
        """``(position in items, item)`` of this share."""
        return [(k, items[k]) for k in range(self.index - 1, len(items), self.count)]

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def manifest_path(csv_path: str | Path) -> Path:
    return Path(str(csv_path) + MANIFEST_SUFFIX)


def write_manifest(csv_path: str | Path, shard: Shard, total: int, entries: Sequence[tuple[int, str, bool]]) -> Path:
    """Write the manifest of a share's CSV; ``entries``: ``(position, name, predicted)``
    for every input of the share."""
    path = manifest_path(csv_path)
    data = {"format": "heatmaploc-shard", "shard": shard.index, "of": shard.count, "inputs_total": total,
            "csv": Path(csv_path).name,
            "images": [{"position": k, "name": name, "predicted": ok} for k, name, ok in entries]}
    atomic_write_bytes(path, (json.dumps(data, indent=1) + "\n").encode())
    return path


@dataclass
class MergeReport:
    """What :func:`merge_parts` found: ``rows`` written, ``images`` covered, and the gaps."""

    rows: int = 0
    images: int = 0
    total: int = 0
    missing_shards: list[int] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing_shards and not self.failed


def _read_part(path: Path) -> tuple[dict, list[str], list[list[str]]]:
    mpath = manifest_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if not mpath.is_file():
        raise ValueError(f"{path}: no shard manifest {mpath.name} beside it (parts come from predict --shard I/N --out)")
    try:
        manifest = json.loads(mpath.read_text())
        if manifest.get("format") != "heatmaploc-shard":
            raise ValueError
        int(manifest["shard"]), int(manifest["of"]), int(manifest["inputs_total"]), list(manifest["images"])
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{mpath}: not a heatmaploc shard manifest") from None
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 text") from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise ValueError(f"{path}: empty file; expected a predictions header")
    return manifest, rows[0], rows[1:]


def merge_parts(out: str | Path, parts: Sequence[str | Path]) -> MergeReport:
    """Join share CSVs (with their manifests) into ``out`` in the full input order.

    Raises ``ValueError`` (one line, naming the file) for parts of different runs, a
    share or image given twice, or a CSV row whose image its manifest does not list.
    Missing shares and images a share could not predict are returned as gaps; ``out``
    then holds what there is.
    """
    if not parts:
        raise ValueError("no parts to merge")
    first = None
    seen_shards: dict[int, Path] = {}
    owner: dict[str, Path] = {}
    position: dict[str, int] = {}
    header = None
    by_image: dict[str, list[list[str]]] = {}
    report = MergeReport()
    for raw in parts:
        path = Path(raw)
        manifest, head, rows = _read_part(path)
        key = (manifest["of"], manifest["inputs_total"])
        if first is None:
            first, header = (key, path), head
        if key != first[0]:
            raise ValueError(f"{path}: a share of {manifest['of']} over {manifest['inputs_total']} inputs, but "
                             f"{first[1]} is one of {first[0][0]} over {first[0][1]}: parts of different runs")
        if head != header:
            raise ValueError(f"{path}: header {','.join(head)!r} differs from {first[1]}'s {','.join(header)!r}")
        shard = int(manifest["shard"])
        if shard in seen_shards:
            raise ValueError(f"{path}: share {shard}/{manifest['of']} was already given by {seen_shards[shard]}")
        seen_shards[shard] = path
        for entry in manifest["images"]:
            name = entry["name"]
            if name in owner:
                raise ValueError(f"{path}: image {name!r} is also in {owner[name]}: the parts overlap")
            owner[name], position[name] = path, int(entry["position"])
            if not entry["predicted"]:
                report.failed.append(name)
        listed = {e["name"] for e in manifest["images"]}
        image_col = head.index("image") if "image" in head else 0
        for row in rows:
            if not row:
                continue
            if row[image_col] not in listed:
                raise ValueError(f"{path}: row for image {row[image_col]!r}, which its manifest does not list")
            by_image.setdefault(row[image_col], []).append(row)
    report.total = first[0][1]
    report.missing_shards = sorted(set(range(1, first[0][0] + 1)) - set(seen_shards))
    report.images = len(owner)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for name in sorted(by_image, key=position.__getitem__):
        writer.writerows(by_image[name])
        report.rows += len(by_image[name])
    atomic_write_bytes(Path(out), buffer.getvalue().encode())
    return report
