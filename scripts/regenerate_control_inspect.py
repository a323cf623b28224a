#!/usr/bin/env python
"""Regenerate everything behind ``--strength`` and ``ddrsr inspect`` for one model, in dependency order.

    python scripts/regenerate_control_inspect.py                     # the shipped default (needs its clean embedding)
    python scripts/regenerate_control_inspect.py --weights results/rrdb_ddr_real_x4_lite_clean.pth

1. ``scripts/train_inspect_regressors.py``: the regressors and the per-spec strength table of this model
   (``weights/inspect_regressors_lite.npz``; about 10 minutes on one core; ``--strength_only`` keeps the heads,
   which depend only on the frozen encoder, and recomputes the table: a few minutes);
2. ``scripts/control_report.py``: docs/CONTROL.md and docs/control/strength_crops.png;
3. ``scripts/inspect_report.py``: docs/INSPECT.md (downloads two small Debian packages unless ``--debs none``).

The model must hold its clean embedding: ``python scripts/compute_clean_embedding.py -o OUT.pth`` writes a
checkpoint with it (ship that with scripts/ship_weights.py, or pass it here with ``--weights``).
"""
import argparse
import os
import shlex
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-n', '--model', default=None, help='zoo model (default: the scripts\' default model)')
    parser.add_argument('--weights', help='checkpoint with a clean embedding (default: the shipped file)')
    parser.add_argument('--debs', nargs='+', help='passed to inspect_report.py (e.g. none)')
    parser.add_argument('--skip_regressors', action='store_true', help='keep the existing regressor file')
    parser.add_argument('--strength_only', action='store_true', help='keep the regressor heads (they depend only on '
                        'the frozen encoder) and recompute only the strength table of this model (a few minutes)')
    from ddrsr.utils.cli_flags import add_hidden_aliases

    args = add_hidden_aliases(parser).parse_args(argv)
    common = (['-n', args.model] if args.model else []) + (['--weights', args.weights] if args.weights else [])
    fit = ['scripts/train_inspect_regressors.py', *common] + (['--strength_only'] if args.strength_only else [])
    steps = [] if args.skip_regressors else [fit]
    steps += [['scripts/control_report.py', *common],
              ['scripts/inspect_report.py', *common, *(['--debs', *args.debs] if args.debs else [])]]
    for step in steps:
        print('$ python ' + shlex.join(step), file=sys.stderr, flush=True)
        status = subprocess.run([sys.executable, *step], cwd=ROOT).returncode
        if status:
            print(f'regenerate_control_inspect: {step[0]} failed with status {status}', file=sys.stderr)
            return status
    return 0


if __name__ == '__main__':
    sys.exit(main())
