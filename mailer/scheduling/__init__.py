"""Scheduling: the pure planner of due times and the atomic claim of due messages."""
