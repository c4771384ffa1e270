"""Reports made of counts that add up: what a batch of sends or a drain of the track queue did."""

from __future__ import annotations

from dataclasses import fields
from typing import Self


class Tally:
    """A dataclass of int counts whose `add` sums another of its kind into it, field by field."""

    def add(self, other: Self) -> None:
        """Accumulate another report's counts into this one."""
        for counted in fields(self):  # type: ignore[arg-type]
            setattr(self, counted.name, getattr(self, counted.name) + getattr(other, counted.name))
