"""Checks every simulator preset's config shares."""
from __future__ import annotations


def check_size_and_counts(height: int, width: int, count_range: tuple[int, int], what: str = "image") -> None:
    """A ``ValueError`` for an image smaller than 8 x 8 pixels or a source count range
    that is not ``0 <= min <= max``."""
    if height < 8 or width < 8:
        raise ValueError(f"{what} size must be at least 8x8, got {height}x{width}")
    lo, hi = count_range
    if lo < 0 or hi < lo:
        raise ValueError(f"count_range must satisfy 0 <= min <= max, got {count_range}")


def check_subset(name: str, values: tuple, allowed: tuple) -> None:
    """A ``ValueError`` naming the option ``name`` when ``values`` is empty or holds
    something outside ``allowed``."""
    if not values or any(v not in allowed for v in values):
        raise ValueError(f"{name} must be a non-empty subset of {allowed}, got {values}")
