#!/usr/bin/env python
"""The DDR ablation: RRDB (b+n) against RRDB-DDR (b+n), paired by seed, and docs/ABLATION.md.

    python scripts/ddr_ablation.py                       # 2 seeds x 2 arms x 1000 iterations, then the report
    python scripts/ddr_ablation.py --skip_training       # only evaluate the runs and write the report

Both arms start from the shipped RRDB (clean), train on the same blur + noise pipeline (their option files
differ only in DDR guidance) for the same iterations, with the same seed per pair. The DDR arm is guided by
``--encoder`` (default: the blind encoder the default model uses). Each run is ``ddrsr train`` with overrides,
resumable (re-run the same command after an interruption); each final EMA checkpoint is evaluated with
``ddrsr evaluate -n ZOO_NAME=CHECKPOINT``. The verdict comes from :mod:`ddrsr.analysis.ablation`.
"""
import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # the repository's ddrsr, also when it is not installed
    sys.path.append(ROOT)
from ddrsr.utils.cli_flags import add_hidden_aliases  # noqa: E402
from ddrsr.utils.markdown import markdown_table, write_text  # noqa: E402
from ddrsr.analysis.ablation import DEGRADED_SPECS, ablation_verdict, logged_schedule, mean_psnr  # noqa: E402
from ddrsr.analysis.reproduction.commands import run_cli  # noqa: E402

#: arm -> (option file, zoo architecture of its checkpoints, label)
ARMS = {'plain': ('options/train_rrdb_x4_lite.yml', 'rrdb_bn_x4_lite', 'RRDB (b+n)'),
        'ddr': ('options/train_rrdb_ddr_x4_lite.yml', 'rrdb_ddr_bn_x4_lite', 'RRDB-DDR (b+n)')}
SPECS = ('clean',) + DEGRADED_SPECS + ('jpeg30',)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    parser.add_argument('--iterations', type=int, default=1000)
    parser.add_argument('--encoder', default='weights/ddr_encoder_blind_x4_lite.pth', help='frozen DDR encoder')
    parser.add_argument('--prefix', default='ablation', help='experiment names: PREFIX_ARM_bn_seedS')
    parser.add_argument('--experiments', default=os.path.join(ROOT, 'experiments'),
                        help="where the runs are (BasicSR's experiments/ folder)")
    parser.add_argument('--hr', default='datasets/debian_photos/hr')
    parser.add_argument('--meta_info', default='scripts/debian_photos_val.txt')
    parser.add_argument('--crop_size', type=int, default=480)
    parser.add_argument('--margin', type=float, default=0.2, help='required DDR gain per seed (dB)')
    parser.add_argument('--skip_training', action='store_true', help='evaluate existing runs only')
    parser.add_argument('-o', '--output', default='docs/ABLATION.md')
    parser.add_argument('--device', default='auto')
    return add_hidden_aliases(parser).parse_args(argv)


def run_name(args, arm, seed):
    return f'{args.prefix}_{arm}_bn_seed{seed}'


def train_overrides(args, arm, seed):
    """``--force_yml`` entries: name, seed, length (LR halved at 2/3, EMA sized to the run), encoder."""
    overrides = [f'name={run_name(args, arm, seed)}', f'manual_seed={seed}', f'train:total_iter={args.iterations}',
                 f'train:scheduler:milestones=[{args.iterations * 2 // 3}]', 'train:ema_decay=auto',
                 f'val:val_freq={args.iterations}', 'logger:save_checkpoint_freq=250']
    if arm == 'ddr':
        overrides.append(f'path:pretrain_network_encoder={args.encoder}')
    return overrides


def checkpoint(args, arm, seed):
    return os.path.join(args.experiments, run_name(args, arm, seed), 'models', f'net_g_{args.iterations}.pth')


def train(args, arm, seed):
    if os.path.isfile(checkpoint(args, arm, seed)):
        return
    if os.path.abspath(args.experiments) != os.path.join(ROOT, 'experiments'):
        sys.exit('ddr_ablation: training writes to experiments/ (BasicSR); --experiments is for --skip_training')
    command = ['ddrsr', 'train', '-opt', ARMS[arm][0], '--auto_resume', '--force_yml', *train_overrides(args, arm, seed)]
    print('$ ' + shlex.join(command), file=sys.stderr, flush=True)
    subprocess.run([sys.executable, '-m', 'ddrsr.cli', *command[1:]], cwd=ROOT, check=True)


def schedule(args, arm, seed):
    """The run's learning rates as its logs show them (a run extended by resuming keeps its first milestones)."""
    folder = os.path.join(args.experiments, run_name(args, arm, seed))
    logs = sorted(name for name in os.listdir(folder) if name.startswith('train_') and name.endswith('.log')) \
        if os.path.isdir(folder) else []
    texts = []
    for name in logs:  # named train_<run>_<timestamp>.log: sorted = oldest first
        with open(os.path.join(folder, name), encoding='utf-8', errors='replace') as handle:
            texts.append(handle.read())
    return logged_schedule(texts)


def markdown(args, results, verdict, command):
    lines = ['# DDR ablation', '', f'Generated by `scripts/ddr_ablation.py` on {datetime.date.today()}. '
             'Do not edit by hand.', '', '```bash', command, '```', '',
             f'Both arms start from the shipped RRDB (clean) and train {args.iterations} iterations on the same '
             'blur + noise pipeline, one pair per seed; the DDR arm is guided by the frozen encoder '
             f'`{args.encoder}`. Each cell is PSNR (dB, Y channel) on {args.crop_size}-px centre crops of the '
             'validation photos; "mean" is over ' + ', '.join(DEGRADED_SPECS) + '.', '',
             'Learning rate of each run, as its training logs show it:', '',
             *[f'- {ARMS[arm][2]}, seed {seed}: {schedule(args, arm, seed)}' for seed in args.seeds for arm in ARMS],
             '']
    lines += markdown_table(['run', 'seed', *SPECS, 'mean'], [
        [ARMS[arm][2], seed, *(f'{results[arm][seed][spec]["psnr"]:.2f}' for spec in SPECS),
         f'{mean_psnr(results[arm][seed], strict=True):.2f}'] for seed in args.seeds for arm in ARMS])
    lines += ['', '## Verdict', '']
    lines += markdown_table(['seed', 'DDR − plain, mean over the degraded specs (dB)', f'≥ +{args.margin:.2f}'],
                            [[seed, f'{gain:+.2f}', 'yes' if gain >= args.margin else '**no**']
                             for seed, gain in verdict.gains.items()])
    outcome = ('DDR guidance beats the plain network by at least '
               f'{args.margin:.2f} dB for every seed.' if verdict.passed else
               f'DDR guidance does **not** beat the plain network by {args.margin:.2f} dB for every seed '
               f'(mean gain {verdict.mean_gain:+.2f} dB).')
    return '\n'.join(lines + ['', outcome, ''])


def main(argv=None):
    args = parse_args(argv)
    if not args.skip_training:
        for seed in args.seeds:
            for arm in ARMS:
                train(args, arm, seed)
    tokens = {}  # (arm, seed) -> `ddrsr evaluate -n` value, which is also the row's key in its results
    for seed in args.seeds:
        for arm in ARMS:
            path = checkpoint(args, arm, seed)
            if not os.path.isfile(path):
                sys.exit(f'ddr_ablation: {path} is missing; run without --skip_training')
            tokens[arm, seed] = f'{ARMS[arm][1]}={os.path.abspath(path)}'
    models = [flag for token in tokens.values() for flag in ('-n', token)]
    report, _ = run_cli(['evaluate', *models, '--hr', args.hr, '--meta_info', args.meta_info, '--specs', *SPECS,
                         '--crop_size', str(args.crop_size), '--device', args.device])
    results = {arm: {seed: report['results'][tokens[arm, seed]] for seed in args.seeds} for arm in ARMS}
    verdict = ablation_verdict(results['plain'], results['ddr'], margin=args.margin)
    command = 'python scripts/ddr_ablation.py ' + shlex.join(argv if argv is not None else sys.argv[1:])
    write_text(args.output, markdown(args, results, verdict, command.strip()))
    print(json.dumps({'gains': verdict.gains, 'passed': verdict.passed, 'doc': args.output}))
    return 0


if __name__ == '__main__':
    from ddrsr.errors import DDRSRError

    try:
        sys.exit(main())
    except DDRSRError as error:  # a failed ddrsr command: its own output said why
        sys.exit(f'ddr_ablation: error: {error}')
