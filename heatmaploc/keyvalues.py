"""``KEY=VALUE`` texts (command-line overrides, known physics) as a dict."""
from __future__ import annotations

from typing import Any, Sequence

import yaml


def parse_overrides(items: Sequence[str], option: str = "--set") -> dict[str, Any]:
    """``["key=value", ...]`` -> dict, values parsed as YAML (``[0, 10]``, ``0.5``, ``jet``);
    errors name ``option``."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{option} expects KEY=VALUE, got {item!r}")
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise ValueError(f"{option} {item!r}: value does not parse ({err})") from None
        if isinstance(parsed, str):  # YAML 1.1 reads "1e-3" as a string
            try:
                parsed = float(parsed)
            except ValueError:
                pass
        out[key.strip()] = parsed
    return out
