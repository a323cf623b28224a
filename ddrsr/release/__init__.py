"""Train the release family in one budgeted command (``scripts/train_release.py``).

:mod:`~ddrsr.release.stages` (the six models and their derived option files), :mod:`~ddrsr.release.calibrate`
(it/s per stage, alone and side by side), :mod:`~ddrsr.release.plan` (sizing to the budget),
:mod:`~ddrsr.release.runner` (resumable execution), :mod:`~ddrsr.release.publish` (fp16 weights, validation,
manifest, shipping) and :mod:`~ddrsr.release.pack` (a self-contained bundle for a GPU machine).
"""
