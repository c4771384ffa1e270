"""Distributed mode on Celery + Redis: the app factory, the beat table and thin tasks (ids in, one service call)."""
