"""Shared evaluation: the one batched no-grad loop, attribute probes, retrieval and caption metrics."""
