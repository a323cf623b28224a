#!/usr/bin/env python
"""Train the whole release family in one budgeted, resumable command.

    python scripts/train_release.py --budget 540 --device cuda --output release_run
    python scripts/train_release.py --budget 540 --output release_run --ship      # same command after a kill: continues
    python scripts/train_release.py --pack release_bundle                      # bundle for a GPU machine (<= 40 MiB)

It calibrates it/s of each stage on the device (alone, and two side by side), sizes total_iter, LR
milestones, gan_start_iter and the EMA to fit --budget seconds (wall time, everything included), then
trains the SRGAN encoder, the blind encoder fine-tuned from it, and RRDB (clean), then RRDB (b+n),
RRDB-DDR (b+n) and the default real-photo model from the new RRDB (clean), the DDR models guided by the
new blind encoder. Each model is written as fp16 params_ema to OUT/weights,
with OUT/manifest.json and the validation table OUT/validation.md. --ship replaces a file in weights/
only when the new model beats the shipped one on the validation set. Killed at any point, the same
command continues from the last checkpoints. Machine-readable results go to stdout as JSON.
"""
import time

STARTED = time.monotonic()  # the budget counts from here, imports included

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def start_fork_server():
    """Start the fork server now, so that it imports ddrsr while this process does the same.

    ``ddrsr.release.workers.context()`` then finds it running (same preload list) instead of starting it later.
    """
    import multiprocessing
    import multiprocessing.forkserver

    os.environ.setdefault('PYTORCH_NVML_BASED_CUDA_CHECK', '1')  # as in workers.context(): keep CUDA fork-safe
    multiprocessing.get_context('forkserver').set_forkserver_preload(
        ['ddrsr', 'basicsr.train', 'ddrsr.release.workers', 'ddrsr.release.calibrate'])
    multiprocessing.forkserver.ensure_running()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--budget', type=float, help='wall-clock seconds for everything: calibration, training, '
                        'export and evaluation')
    parser.add_argument('--device', default='auto', choices=['auto', 'cpu', 'cuda'])
    parser.add_argument('-o', '--output', default='experiments/release', help='output folder (default: experiments/release); '
                        'rerunning on it continues the run')
    parser.add_argument('--ship', action='store_true', help='replace files in weights/ by new models that beat them')
    parser.add_argument('--pack', metavar='DIR', help='write a self-contained bundle to DIR and exit')
    parser.add_argument('--wheels', metavar='DIR', help='with --pack: copy the wheels from DIR instead of downloading '
                        'kornia, kornia_rs (cp312) and building basicsr from PyPI')
    parser.add_argument('--dry_run', action='store_true', help='calibrate, print and keep the plan, do not train')
    parser.add_argument('--lanes', type=int, choices=[1, 2], help='force one or two stages side by side '
                        '(default: decided by the calibration)')
    parser.add_argument('--start_method', choices=['forkserver', 'spawn'], default='forkserver',
                        help='how stage processes start: forkserver (fast, default) or spawn (fresh interpreters, '
                        'for a CUDA setup that fails in forked children)')
    parser.add_argument('--no_progress', action='store_true', help='no progress bars')
    # for tests: tiny templates (same file names as the lite ones in options/) and a scratch weights folder
    parser.add_argument('--templates', help=argparse.SUPPRESS)
    parser.add_argument('--weights_dir', help=argparse.SUPPRESS)
    parser.add_argument('--max_iterations', type=int, help=argparse.SUPPRESS)  # per stage; keeps test runs short
    parser.add_argument('--calibration_seconds', type=float, help=argparse.SUPPRESS)  # per timed window
    from ddrsr.utils.cli_flags import add_hidden_aliases  # torch-free: fine before the fork server starts

    args = add_hidden_aliases(parser).parse_args(argv)
    os.environ['DDRSR_START_METHOD'] = args.start_method
    if not args.pack and args.start_method == 'forkserver':
        start_fork_server()
    from ddrsr.errors import DDRSRError  # imports torch and basicsr: after the fork server has started
    try:
        if args.pack:
            from ddrsr.release.pack import pack
            from ddrsr.release.stages import TEMPLATES_DIR
            result = pack(args.pack, templates_dir=args.templates or TEMPLATES_DIR, wheels_from=args.wheels,
                          progress=not args.no_progress)
        else:
            if args.budget is None or args.budget <= 0:
                parser.error('give --budget SECONDS (or --pack DIR)')
            from ddrsr.release.runner import run_release
            from ddrsr.release.stages import TEMPLATES_DIR
            from ddrsr.zoo import WEIGHTS_DIR
            command = 'python scripts/train_release.py ' + ' '.join(shlex.quote(a) for a in (argv or sys.argv[1:]))
            result = run_release(args.output, args.budget, args.device, ship=args.ship,
                                 weights_dir=args.weights_dir or WEIGHTS_DIR,
                                 templates_dir=args.templates or TEMPLATES_DIR, lanes=args.lanes,
                                 dry_run=args.dry_run, progress=not args.no_progress, command=command,
                                 started=STARTED, max_iterations=args.max_iterations,
                                 calibration_seconds=args.calibration_seconds)
    except DDRSRError as error:
        sys.exit(f'ddrsr: error: {error}')
    print(json.dumps(result, indent=1))


if __name__ == '__main__':
    main()
