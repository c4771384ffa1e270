"""Pure decisions about when a message goes: step due times, holdout, caps, quiet hours, retries."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def _unit_hash(*parts: object) -> float:
    """A stable number in [0, 1) from the parts: the same inputs give the same draw on any machine."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def step_due_at(anchor: datetime, delay_minutes: int, window_minutes: int, spread_key: str) -> datetime:
    """When a step is due: `anchor + delay`, plus a per-contact point in `[0, window]`.

    Spreading by a hash of the contact (not at random) keeps re-planning deterministic and
    spreads a wave of sends over the window instead of one spike.
    """
    offset = 0
    if window_minutes > 0:
        offset = int(_unit_hash("spread", spread_key) * (window_minutes + 1))
    return anchor + timedelta(minutes=delay_minutes + offset)


def holdout_group(store_id: int, campaign_key: str, contact_id: int, subject_key: str, percent: int) -> str:
    """`control` for a deterministic `percent` % of enrollments, else `treatment`."""
    if percent <= 0:
        return "treatment"
    draw = _unit_hash("holdout", store_id, campaign_key, contact_id, subject_key)
    return "control" if draw * 100 < percent else "treatment"


@dataclass(frozen=True)
class QuietHours:
    """A daily window (local time) in which no marketing email goes; may span midnight."""

    start: time
    end: time

    @classmethod
    def parse(cls, value: object) -> QuietHours | None:
        """From the store setting `{"start": "21:00", "end": "08:00"}`; None when unset."""
        if not value:
            return None
        if not isinstance(value, dict) or "start" not in value or "end" not in value:
            raise ValueError(f"quiet_hours must be {{'start': 'HH:MM', 'end': 'HH:MM'}}, got {value!r}")
        return cls(time.fromisoformat(str(value["start"])), time.fromisoformat(str(value["end"])))

    def contains(self, local: time) -> bool:
        """True when the local wall-clock time falls inside the window."""
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


def zone(name: str | None, fallback: str = "UTC") -> ZoneInfo:
    """The time zone called `name`, else the fallback (unknown names never raise at send time)."""
    for candidate in (name, fallback, "UTC"):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def after_quiet_hours(when: datetime, quiet: QuietHours | None, tz: ZoneInfo) -> datetime:
    """`when` itself if it is outside quiet hours, else the first instant after they end."""
    if quiet is None:
        return when
    local = when.astimezone(tz)
    if not quiet.contains(local.time().replace(tzinfo=None)):
        return when
    end_day = local.date()
    if quiet.start > quiet.end and local.time() >= quiet.start:
        end_day += timedelta(days=1)  # the window started this evening and ends tomorrow
    end_local = datetime.combine(end_day, quiet.end, tzinfo=tz)
    return end_local.astimezone(when.tzinfo)


def frequency_cap_release(now: datetime, last_emailed_at: datetime | None, cap_hours: float) -> datetime | None:
    """None when a marketing email may go now; else the time the cap allows the next one."""
    if last_emailed_at is None or cap_hours <= 0:
        return None
    release = last_emailed_at + timedelta(hours=cap_hours)
    return release if release > now else None


RETRY_SCHEDULE_MINUTES = (1, 5, 15, 60, 180, 360)


def retry_at(now: datetime, attempts: int) -> datetime | None:
    """When to try a transient failure again after `attempts` tries; None once we should give up."""
    if attempts > len(RETRY_SCHEDULE_MINUTES):
        return None
    return now + timedelta(minutes=RETRY_SCHEDULE_MINUTES[attempts - 1])
