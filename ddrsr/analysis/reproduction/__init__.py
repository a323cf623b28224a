"""Reproducing a paper's findings with ddrsr's own commands, as a user would run them.

``scripts/reproduce_ddr.py`` (Liu et al.'s DDR findings at lite scale -> docs/ANALYSIS.md) is a thin command line
over these modules:

* ``commands``: run ``python -m ddrsr.cli ...`` as a subprocess and read its JSON; copy figures beside a report
  (also used by ``scripts/faig_report.py`` and ``scripts/ddr_ablation.py``).
* ``runs``: what is measured: the trainings derived from the encoder's option file, the networks, checkpoints
  and layers analysed, the test sets.
* ``stages``: each stage as CLI runs, cached as one JSON file per stage (written atomically), resumable.
* ``sections`` and ``report``: docs/ANALYSIS.md from the cache alone; the verdicts come from
  :mod:`ddrsr.analysis.verdicts`, the numbers' text from :func:`ddrsr.analysis.scores.format_score`.
"""
