"""Task and queue names: the contract between dispatchers, beat and workers (they may run different versions)."""

from __future__ import annotations

SEND_QUEUE = "send"
PERIODIC_QUEUE = "periodic"

SEND_CLAIM = "mailer.send_claim"
TICK = "mailer.tick"
HOUSEKEEPING = "mailer.housekeeping"
APPLY_TRACK_QUEUE = "mailer.apply_track_queue"
