"""Metrics for Prometheus; no telemetry ever leaves the machine."""
