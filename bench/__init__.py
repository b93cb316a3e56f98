"""Benchmarks (not tests): each prints ratios measured in one run and the command that reproduces them."""
