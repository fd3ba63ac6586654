"""The benchmark suite (`make bench`, `python -m benchmarks.run [--smoke]`): speed as ratios to plain baselines."""
