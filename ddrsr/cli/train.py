"""``ddrsr train`` (and ``python ddrsr/train.py``, its shim): train from a BasicSR option file.

    ddrsr train -opt options/train_rrdb_ddr_x4_lite.yml --auto_resume
    torchrun --nproc_per_node=4 ddrsr/train.py -opt options/train_rrdb_ddr_x4.yml --launcher pytorch --auto_resume

The work is :func:`ddrsr.training.pipeline.train` (BasicSR's train pipeline with CPU resume, option checks, gloo).
"""
import sys

from ddrsr.cli._common import parser_with_example
from ddrsr.errors import DDRSRError

EXAMPLE = ('ddrsr train -opt options/train_rrdb_ddr_real_x4_lite.yml --auto_resume\n'
           '  torchrun --nproc_per_node=4 ddrsr/train.py -opt options/train_rrdb_ddr_x4.yml --launcher pytorch')


def main(argv=None):
    """``python ddrsr/train.py``: BasicSR's own flags in ``argv`` (default: ``sys.argv[1:]``); the exit status."""
    from ddrsr.training.pipeline import train

    try:
        train(argv=argv)
    except DDRSRError as error:
        print(f'ddrsr: error: {error}', file=sys.stderr)
        return 1
    return 0


def cmd_train(args):
    from ddrsr.training.pipeline import train

    argv = ['-opt', args.opt, '--launcher', args.launcher]
    argv += ['--auto_resume'] * args.auto_resume + ['--debug'] * args.debug
    argv += ['--local_rank', str(args.local_rank)] if args.local_rank is not None else []
    argv += ['--force_yml', *args.force_yml] if args.force_yml else []
    train(argv=argv)
    return 0


def add_subcommands(subparsers):
    train = parser_with_example(subparsers, 'train', 'Train from a BasicSR option file (the same as python '
                                'ddrsr/train.py; LQ is synthesised on the device).', EXAMPLE)
    train.add_argument('-opt', required=True, help='option file, e.g. options/train_rrdb_ddr_real_x4_lite.yml')
    train.add_argument('--launcher', choices=('none', 'pytorch', 'slurm'), default='none',
                       help='none (one process) or pytorch (under torchrun); default: none')
    train.add_argument('--auto_resume', action='store_true',
                       help='continue from the latest training state of experiments/<name> (works on the CPU)')
    train.add_argument('--debug', action='store_true', help="BasicSR's debug mode")
    train.add_argument('--local_rank', type=int, help='set by older launchers')
    train.add_argument('--force_yml', nargs='+', help='override options, e.g. train:ema_decay=0.999')
    train.set_defaults(func=cmd_train)
