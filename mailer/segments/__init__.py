"""Segments: pure lifecycle rules (tiers, audiences) and the set-based queries that apply them."""
