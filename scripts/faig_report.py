#!/usr/bin/env python
"""Run FAIG and its comparison methods on a baseline/target pair and write docs/FAIG.md.

    python scripts/faig_report.py                                    # the shipped pair, full settings
    python scripts/faig_report.py --baseline A.pth --target B.pth --images 2 --crop 32 --steps 2 \\
        --mask_images 4 --predict_images 4 --fit_images 8 --output /tmp/FAIG.md --figures /tmp/faig_fig   # smoke run

Every figure comes from the three CLIs, run as subprocesses exactly as a user would run them:
``ddrsr faig`` once per method (the FAIG run is the timed one), ``ddrsr faig-mask`` with all rankings and
``ddrsr faig-predict``. Rankings and tables go to ``--work``; the Markdown and its figures to ``--output`` and
``--figures``. The verdict (does FAIG beat IG, |theta - theta_bar| and random?) is computed from the
masking table by ``ddrsr.faig.verdicts``, never written by hand; this script only words it.
"""
import argparse
import datetime
import json
import os
import shlex
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # the repository's ddrsr, also when it is not installed
    sys.path.append(ROOT)
from ddrsr.utils.cli_flags import add_hidden_aliases  # noqa: E402
from ddrsr.utils.markdown import markdown_table, write_text  # noqa: E402
from ddrsr.analysis.reproduction.commands import copy_figure, run_cli  # noqa: E402
from ddrsr.faig.verdicts import faig_verdict, selectivity  # noqa: E402
METHODS = ('faig', 'ig', 'absdiff', 'random')
NAMES = {'faig': 'FAIG', 'ig': 'IG', 'absdiff': '|θ−θ̄|', 'random': 'random'}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--baseline', default='rrdb_clean_x4_lite', help='zoo name or checkpoint (clean model)')
    parser.add_argument('--target', default='rrdb_bn_x4_lite', help='zoo name or checkpoint (blind model)')
    parser.add_argument('--arch', default='rrdb_bn_x4_lite', help='architecture of checkpoint paths')
    parser.add_argument('--hr', default='datasets/debian_photos/hr', help='HR folder (held-out photos)')
    parser.add_argument('--meta_info', default='scripts/debian_photos_val.txt', help='images of --hr to use')
    parser.add_argument('--deg', default='blur2')
    parser.add_argument('--vs', default='noise20')
    parser.add_argument('--methods', nargs='+', default=list(METHODS), choices=METHODS)
    parser.add_argument('--images', type=int, default=10, help='HR crops for attribution (default: 10)')
    parser.add_argument('--crop', type=int, default=96, help='HR crop size for every step (default: 96)')
    parser.add_argument('--steps', type=int, default=100, help='M (default: 100)')
    parser.add_argument('--seed', type=int, default=0, help='crops/noise of the attribution set (default: 0)')
    parser.add_argument('--mask_images', type=int, default=20, help='HR crops for masking PSNR (default: 20)')
    parser.add_argument('--mask_seed', type=int, default=1, help='other crops than the attribution set (default: 1)')
    parser.add_argument('--percents', type=float, nargs='+', default=[1, 3, 5, 10])
    parser.add_argument('--fit_hr', default='datasets/debian_photos/train_sub',
                        help='unlabelled fit images for prediction (default: the training crops)')
    parser.add_argument('--fit_meta_info', default='datasets/debian_photos/meta_info_train_sub.txt')
    parser.add_argument('--fit_images', type=int, default=40)
    parser.add_argument('--predict_images', type=int, default=20, help='held-out crops per spec (default: 20)')
    parser.add_argument('--percent', type=float, default=1.0, help='top %% filters for prediction (default: 1)')
    parser.add_argument('--device', default='cpu', help='the runtime figure is for the CPU (default: cpu)')
    parser.add_argument('--work', default='results/faig_report', help='rankings and tables')
    parser.add_argument('--output', default='docs/FAIG.md')
    parser.add_argument('--figures', default='docs/faig', help='folder for the figures the doc shows')
    return add_hidden_aliases(parser).parse_args(argv)


# ---------------------------------------------------------------------------------------------- analysis
def verdict(sel, deg, vs, percents):
    """Sentences on whether FAIG beats the other methods (the numbers: :func:`ddrsr.faig.verdicts.faig_verdict`)."""
    found = faig_verdict(sel, percents)
    if found is None:
        return ['FAIG was not run, so there is nothing to compare.']
    first, mean, (faig_deg, faig_vs) = found['p'], found['mean'], found['faig']
    others = [m for m in sel if m != 'faig']
    lines = [f'- **Paper\'s pattern at p = {first:g} %:** masking FAIG\'s {deg} filters costs {deg} inputs '
             f'{faig_deg:+.2f} dB more than {vs} inputs, and masking its {vs} filters costs {vs} inputs '
             f'{faig_vs:+.2f} dB more than {deg} inputs. '
             + ('Both are positive: the discovered filters are specific to their degradation.' if found['pattern']
                else 'At least one is not positive: on this pair the discovered filters are not specific in both '
                'directions.')]
    for k, spec in enumerate((deg, vs)):
        best = found['best'][k]
        lines.append(f'- **{spec} filters alone, p = {first:g} %:** the most selective are {NAMES[best]}\'s '
                     f'({sel[best][first][k]:+.2f} dB; FAIG {sel["faig"][first][k]:+.2f} dB).')
    lines.append('- **Mean of the two directions.** Methods that ignore the degradation (|θ−θ̄|, random) mask the '
                 'same filters for both, so their two selectivities cancel (mean 0 dB); a positive mean needs filters '
                 'that are specific in both directions.')
    wins = found['wins']
    lines.append('- **Best mean selectivity per p:** ' + ', '.join(f'p = {p:g} %: {NAMES[m]}' for p, m in wins.items())
                 + '.')
    if found['faig_beats_all']:
        lines.append(f'- **Verdict: yes.** At p = {first:g} %, FAIG\'s mean selectivity '
                     f'({mean["faig"][first]:+.2f} dB) '
                     'is higher than that of ' + ', '.join(f'{NAMES[m]} ({mean[m][first]:+.2f} dB)' for m in others)
                     + f'; FAIG is best at {sum(w == "faig" for w in wins.values())} of {len(wins)} p values.')
    else:
        beaten = found['beaten']
        lines.append(f'- **Verdict: no, not on this pair.** At p = {first:g} %, FAIG\'s mean selectivity '
                     f'({mean["faig"][first]:+.2f} dB) does not beat '
                     + ', '.join(f'{NAMES[m]} ({mean[m][first]:+.2f} dB)' for m in found['not_beaten'])
                     + (', though it beats ' + ', '.join(f'{NAMES[m]} ({mean[m][first]:+.2f} dB)' for m in beaten)
                        if beaten else '') + '. This is what we measured; the settings were not tuned.')
    return lines


def selectivity_table(sel, deg, vs):
    header = ['method', 'p', f'{deg} filters: drop on {deg} − drop on {vs}', f'{vs} filters: drop on {vs} − drop on {deg}',
              'mean']
    rows = [[NAMES[method], f'{p:g} %', f'{a:+.2f} dB', f'{b:+.2f} dB', f'{(a + b) / 2:+.2f} dB']
            for method, by_p in sel.items() for p, (a, b) in sorted(by_p.items())]
    return '\n'.join(markdown_table(header, rows)) + '\n'


# ---------------------------------------------------------------------------------------------- the doc
def write_doc(args, runs, mask, predict, load_before, figures):
    deg, vs = args.deg, args.vs
    sel = selectivity(mask, deg, vs)
    faig = runs.get('faig')
    out = ['# FAIG: filters specific to one degradation', '',
           f'Generated by `{shlex.join(["python", "scripts/faig_report.py", *sys.argv[1:]])}` on '
           f'{datetime.date.today().isoformat()}; do not edit by hand. Method: Xie et al., *Finding Discriminative '
           'Filters for Specific Degradations in Blind Super-Resolution* (NeurIPS 2021), implemented generically in '
           '`ddrsr/faig` (any `nn.Module`; every `nn.Conv2d` filter `weight[o, i]`).', '',
           '## Setup', '',
           f'- Baseline θ̄ `{args.baseline}`, target θ `{args.target}` (architecture `{args.arch}` for checkpoint '
           f'paths): {next(iter(runs.values()))[0]["num_filters"]} filters.',
           f'- Attribution: `--deg {deg} --vs {vs}`, {args.images} HR crops of {args.crop}×{args.crop} from '
           f'`{args.hr}` (`{args.meta_info}`), seed {args.seed}, M = {args.steps}. Loss: sum of squared errors of the '
           'SR output against the HR crop.',
           f'- Masking: {args.mask_images} other crops (seed {args.mask_seed}) of the same photos; PSNR on Y, '
           'border 4.',
           f'- Prediction: fit on {args.fit_images} unlabelled crops of `{args.fit_hr}`, tested on '
           f'{args.predict_images} crops per spec of `{args.hr}`; top {args.percent:g} % filters per degradation.', '']
    if faig:
        result, wall = faig
        settings = result['settings']
        out += ['## Runtime', '',
                f'`ddrsr faig` with M = {settings["steps"]} on {settings["images"]} validation crops of '
                f'{settings["hr_size"][0]}×{settings["hr_size"][1]} on {settings["device"].upper()} '
                f'({settings["threads"]} torch thread(s), batch {settings["batch_size"]}): '
                f'**{settings["runtime_s"]:.0f} s** for the attribution itself, {wall:.0f} s for the whole command '
                f'(start-up, loading the models, reading the photos, writing the JSON and the plot). '
                f'Load average when it started: {load_before[0]:.2f} (1 min); other jobs may have shared the CPU.', '']
    out += ['## Masking', '',
            'Each method\'s top-p % filters for one degradation are replaced by the baseline\'s, in the target. '
            'Cells: PSNR (drop against the unmasked target).', '', mask['markdown_text'],
            f'![PSNR drop against p]({figures["mask"]})', '',
            '**Selectivity** (the paper\'s criterion: masking the filters for a degradation should hurt inputs with '
            'that degradation far more than the others):', '', selectivity_table(sel, deg, vs),
            '## Does FAIG beat IG, |θ−θ̄| and random?', '', *verdict(sel, deg, vs, sorted(args.percents)), '',
            '## Where the discovered filters sit', '']
    for method, path in figures['layers'].items():
        out += [f'![{NAMES[method]} filters per layer]({path})', '']
    out += ['## Degradation prediction', '',
            'The rule (also in `ddrsr/faig/prediction.py`): the activation of filter `weight[o, i]` is the mean '
            '|response| of that kernel to channel i of its layer\'s input, in log, minus the mean log response of '
            'the layer\'s output channels (so the amount of texture cancels). A score per degradation is the mean '
            'of these over its top filters, minus the same mean on clean references. An exact 1-D 2-means split '
            'of the unlabelled fit pool (fit crops under clean, deg, vs and both, shuffled, labels never used) sets '
            'the threshold; the side where the clean references fall means "absent". Yes/no for both degradations '
            'gives four classes. Chance is 0.25.', '', predict['markdown_text'],
            '## Commands', '', '```bash', *predict['commands'], '```', '']
    return write_text(args.output, '\n'.join(out))


def main(argv=None):
    args = parse_args(argv)
    os.chdir(ROOT)
    models = ['--baseline', args.baseline, '--target', args.target, '--arch', args.arch, '--device', args.device]
    load_before = os.getloadavg()
    commands, runs, rankings, figures = [], {}, [], {'layers': {}}
    for method in args.methods:
        output = os.path.join(args.work, f'ranking_{method}.json')
        argv = ['faig', *models, '--hr', args.hr, '--meta_info', args.meta_info, '--images', str(args.images),
                '--crop', str(args.crop), '--seed', str(args.seed), '--deg', args.deg, '--vs', args.vs, '--method',
                method, '--steps', str(args.steps), '-o', output]
        commands.append('ddrsr ' + shlex.join(argv))
        runs[method] = run_cli(argv)
        rankings.append(output)
        if method in ('faig', 'ig'):
            figures['layers'][method] = copy_figure(runs[method][0]['plot'], args.figures, args.output,
                                                    f'layers_{method}.png')
    argv = ['faig-mask', *models, '--ranking', *rankings, '--hr', args.hr, '--meta_info', args.meta_info,
            '--images', str(args.mask_images), '--crop', str(args.crop), '--seed', str(args.mask_seed),
            '--percents', *[f'{p:g}' for p in args.percents], '--output', args.work]
    commands.append('ddrsr ' + shlex.join(argv))
    mask, _ = run_cli(argv)
    mask['markdown_text'] = open(mask['markdown']).read()
    figures['mask'] = copy_figure(mask['plot'], args.figures, args.output, 'masking_drop.png')
    argv = ['faig-predict', '--target', args.target, '--arch', args.arch, '--device', args.device, '--ranking',
            *rankings, '--hr', args.hr, '--meta_info', args.meta_info, '--images', str(args.predict_images),
            '--crop', str(args.crop), '--fit_hr', args.fit_hr, '--fit_meta_info', args.fit_meta_info,
            '--fit_images', str(args.fit_images), '--percent', f'{args.percent:g}', '--output', args.work]
    commands.append('ddrsr ' + shlex.join(argv))
    predict, _ = run_cli(argv)
    predict['markdown_text'] = open(predict['markdown']).read()
    predict['commands'] = commands
    doc = write_doc(args, runs, mask, predict, load_before, figures)
    print(json.dumps({'doc': doc, 'figures': figures, 'work': args.work,
                      'runtime_s': {m: {'attribution': r[0]['settings']['runtime_s'], 'command': round(r[1], 1)}
                                    for m, r in runs.items()}}, indent=2))


if __name__ == '__main__':
    from ddrsr.errors import DDRSRError

    try:
        main()
    except DDRSRError as error:  # a failed ddrsr command: its own output said why
        sys.exit(f'faig_report: error: {error}')
