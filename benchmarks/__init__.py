"""marconi's benchmarks: every driver against its backend's raw floor and best peer, in one run, each run checked.

Installed as ``marconi_benchmarks``; run it as ``marconi bench`` (see :mod:`marconi_benchmarks.cli`). Workloads
are declared in ``workloads.toml``; contenders in :mod:`marconi_benchmarks.contenders`.
"""
