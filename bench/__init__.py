"""Benchmarks (not tests): send, ingest and segmentation figures beside ceilings measured in the same run."""
