"""Shared machinery: config overrides, seeded random streams, the training loop, experiment results and sweeps."""
