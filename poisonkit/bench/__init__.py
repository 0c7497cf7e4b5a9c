"""Throughput benchmarks behind `poisonkit bench`: each op against the peers a user would
otherwise run (torch, OpenCV, Pillow, kornia, scipy, DALI built-ins, the reference loops),
measured in the same run, written as JSON plus a markdown table to a results folder the user
names (``--out``, default ./poisonkit-bench-results), with a leaderboard and line rates.
One module per benchmark (``python -m poisonkit.bench.<name>``); ``run_all`` runs them."""
