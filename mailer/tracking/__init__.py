"""Tracking: signed tokens, opens, clicks, unsubscribes, suppressions."""
