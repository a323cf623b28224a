"""Benchmarks behind ``scripts/benchmark.py`` (not tests): each module measures one section of
``docs/BENCHMARKS.md`` and returns a JSON-ready dict; :mod:`benchmarks.report` turns them into the doc.

Every timed figure is the median of ``repeats`` runs after ``warmup`` untimed runs (:func:`timing.timed`).
"""
