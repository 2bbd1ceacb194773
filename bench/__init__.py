"""Benchmarks of the recall and MOT ingest paths: input generators, one-case runner, orchestration.

``make bench`` (``python -m bench.run``) measures every case at several sizes against two references
on the same data, writes ``bench/results/`` and regenerates ``docs/performance.md``.
"""
