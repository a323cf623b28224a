#!/usr/bin/env python
"""Reproduce Liu et al.'s DDR findings at lite scale on 2 CPU cores and write docs/ANALYSIS.md.

    python scripts/reproduce_ddr.py                       # everything; trains what is missing, resumable
    python scripts/reproduce_ddr.py --stages train        # only the trainings
    python scripts/reproduce_ddr.py --stages report       # rewrite docs/ANALYSIS.md from the cached results

Stages (each caches its JSON in ``--work``; ``--redo STAGE`` measures it again):

* ``train``: SRResNet-style generators on CLEAN bicubic x4 data, with and without global residual (GR).
  Each run is the DDR encoder's schedule (``options/train_srgan_encoder_x4_lite.yml``): L1 loss up to
  ``gan_start_iter``, then GAN + L1. So the checkpoint at ``gan_start_iter`` is the MSE-type SRResNet and
  the last one the SRGAN. The GR run *is* the shipped encoder's run. ``more`` runs continue each SRResNet
  with the L1 loss only, for the paper's "try more iterations" check.
* ``layers``: ``ddrsr analyze`` at conv_first and the blocks 1/4, 1/2 and last, on clean/blur2/noise20.
* ``evolution``: ``ddrsr evolution`` over every checkpoint of the GR run.
* ``generalization``: ``ddrsr generalization`` of the shipped RRDB (clean), RRDB (b+n), RRDB-DDR (b+n).
* ``identify``: ``ddrsr identify`` (DDR vs BRISQUE vs ResNet18).
* ``classification``: ``ddrsr classification-vs-sr``.
* ``timing``: wall time of ``ddrsr analyze``, 3 sets x 100 patches x 5 t-SNE runs.
* ``report``: docs/ANALYSIS.md and its figures (docs/analysis/), from the cached JSON only.

Every number comes from a ddrsr CLI run as a subprocess, as a user would run it; the verdicts in the
report are computed from those numbers, never written by hand. The work is done by ddrsr.analysis.reproduction
(runs, stages, sections, report) and ddrsr.analysis.verdicts; this script only reads its arguments.
"""
import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # the repository's ddrsr, also when it is not installed
    sys.path.append(ROOT)
from ddrsr.utils.cli_flags import add_hidden_aliases  # noqa: E402
from ddrsr.analysis.reproduction import report, runs, stages  # noqa: E402
from ddrsr.analysis.reproduction.commands import add_report_arguments  # noqa: E402
from ddrsr.analysis.reproduction.sections import ReportPaths  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_report_arguments(parser, stages.STAGES, work='results/reproduce_ddr', doc='docs/ANALYSIS.md')
    parser.add_argument('--only', nargs='+', help='train only these runs: gr nogr gr_more nogr_more')
    return add_hidden_aliases(parser).parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    os.chdir(ROOT)
    training, gan_start = runs.training_runs(args.work)
    cache = stages.Cache(args.work, args.redo)
    stages.run_stages(args.stages, cache, training, gan_start, only=args.only)
    if 'report' in args.stages:
        paths = ReportPaths(args.work, args.output, args.figures)
        print(json.dumps({'doc': report.write_report(paths, cache, training, gan_start, sys.argv[1:])}))


if __name__ == '__main__':
    from ddrsr.errors import DDRSRError

    try:
        main()
    except DDRSRError as error:  # a failed ddrsr command: its own output said why
        sys.exit(f'reproduce_ddr: error: {error}')
