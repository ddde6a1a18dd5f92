"""Benchmarks: FlowDesk throughput as ratios against bare baselines run in the same session."""
