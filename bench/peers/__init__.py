"""Typical peers: the straightforward pandas + pandera versions of the same jobs, written plainly.

They are the yardstick "what a competent team would write first", not straw men: vectorised pandas,
pandera's built-in checks, Parquet files as the store. They do less than ours where noted (no replay
of late days, no versioned vehicle history, no exact line numbers for malformed rows).
"""
