"""``ddrsr analyze``, ``generalization`` and ``evolution``: DDR-CHI of layers, models and checkpoints.

The logic is in ddrsr/analysis; these only read arguments, load models (``ddrsr.loader``) and write files.
"""
import os
import sys

from ddrsr.cli._common import add_device, parser_with_example
from ddrsr.errors import DDRSRError


def _add_set_arguments(parser, out_default):
    """The patch-set inputs and t-SNE settings shared by analyze, generalization and evolution."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--hr', help='folder of HR images: the same patches are degraded with each of --specs')
    source.add_argument('--sets', nargs='+', metavar='NAME=DIR',
                        help='folders of LR images, one per set (same images, different degradations)')
    parser.add_argument('--meta_info', help='file listing the images of --hr to use (default: all)')
    parser.add_argument('--specs', nargs='+', default=['clean', 'blur2', 'noise20'],
                        help='named degradations for --hr (default: clean blur2 noise20)')
    parser.add_argument('--patch', type=int, default=32, help='LR patch size (default: 32)')
    parser.add_argument('--patches', type=int, default=100, help='patches per set (default: 100)')
    parser.add_argument('--runs', type=int, default=5, help='t-SNE runs, seeds 0..runs-1 (default: 5)')
    parser.add_argument('--perplexity', type=float,
                        help='t-SNE perplexity (default: 30, lowered to (N-1)/3 for few points)')
    parser.add_argument('--seed', type=int, default=0, help='picks the patches and seeds the degradations')
    parser.add_argument('--output', default=out_default, help=f'folder for figures (default: {out_default})')
    parser.add_argument('--plot', help='write the figure to this PNG instead of into --output')
    add_device(parser)


def _patch_sets(args, scale):
    """``{set_name: (N, 3, p, p)}`` from ``--hr`` + ``--specs`` (degraded here) or ``--sets NAME=DIR``."""
    from ddrsr.analysis import hr_patch_sets, lr_patch_sets, parse_set_dirs

    if args.sets:
        return lr_patch_sets(parse_set_dirs(args.sets), args.patch, args.patches, args.seed)
    return hr_patch_sets(args.hr, args.specs, args.patch, scale, args.patches, args.seed, args.meta_info)


def _figure_path(args, default_name):
    return args.plot or os.path.join(args.output, default_name)


def cmd_analyze(args):
    """DDR-CHI (with WD, BD) of one model at one or more layers; one scatter figure per layer."""
    from ddrsr.analysis import analyze_layer, plot_layer_analysis
    from ddrsr.archs.module_utils import get_layer
    from ddrsr.utils.device import resolve_device
    from ddrsr.loader import load

    if args.plot and len(args.layer) > 1:
        raise DDRSRError('--plot names one figure, but several --layer were given; use --output DIR instead')
    device = resolve_device(args.device)
    if args.opt:
        loaded = load(opt=args.opt, weights=args.weights, device=device)
    else:
        loaded = load(args.model, weights=args.weights, device=device)
    model, name = loaded.network, loaded.name
    for layer in args.layer:
        get_layer(model, layer)  # a misspelt layer fails before any patch is cut
    sets = _patch_sets(args, loaded.scale)
    rows = []
    for layer in args.layer:
        analysis = analyze_layer(model, layer, sets, runs=args.runs, perplexity=args.perplexity, device=device)
        row = analysis.summary()
        row['plot'] = plot_layer_analysis(analysis, _figure_path(args, f'analyze_{name}_{layer}.png'), name=name)
        print(analysis.describe(), file=sys.stderr)
        rows.append(row)
    result = {'model': args.model or args.opt, 'weights': args.weights, 'sets': list(sets), 'patches_per_set': len(
        next(iter(sets.values()))), 'runs': args.runs, 'perplexity': analysis.perplexity}
    if len(rows) == 1:
        return {**result, **rows[0]}
    return {**result, 'layers': rows}


def cmd_generalization(args):
    """DDR-CHI of several models on the same sets: lower = degradations treated alike = generalizes better."""
    from ddrsr.analysis import analyze_layer, default_layer, plot_generalization
    from ddrsr.analysis.scores import format_score
    from ddrsr.archs.module_utils import get_layer
    from ddrsr.utils.device import resolve_device
    from ddrsr.loader import load

    if len(args.layer) not in (0, 1, len(args.model)):
        raise DDRSRError(f'give one --layer for all models or one per --model ({len(args.model)}), '
                         f'got {len(args.layer)}')
    if len(set(args.model)) != len(args.model):
        raise DDRSRError(f'--model names a model twice: {", ".join(args.model)}')
    device = resolve_device(args.device)
    models = {name: load(name, device=device) for name in args.model}  # missing weights fail before any work
    layers = {name: args.layer[index if len(args.layer) > 1 else 0] if args.layer else default_layer(model.network)
              for index, (name, model) in enumerate(models.items())}
    for name, model in models.items():
        get_layer(model.network, layers[name])
    sets_by_scale, analyses, table = {}, {}, []
    for name, model in models.items():
        layer = layers[name]
        if model.scale not in sets_by_scale:  # with --hr, the HR patches are patch * scale pixels
            sets_by_scale[model.scale] = _patch_sets(args, model.scale)
        analysis = analyze_layer(model.network, layer, sets_by_scale[model.scale], runs=args.runs,
                                 perplexity=args.perplexity, device=device)
        analyses[name] = analysis
        table.append({'model': name, **analysis.summary()})
        print(f'{name}: {analysis.describe()}', file=sys.stderr)
    plot = plot_generalization(analyses, _figure_path(args, 'generalization.png'))
    ranking = sorted(table, key=lambda row: row['chi']['mean'])
    print('lower DDR-CHI = generalizes better: ' + ' < '.join(
        f'{row["model"]} ({format_score(row["chi"])})' for row in ranking), file=sys.stderr)
    sets = next(iter(sets_by_scale.values()))
    return {'sets': list(sets), 'patches_per_set': len(next(iter(sets.values()))), 'runs': args.runs,
            'models': table, 'plot': plot}


def cmd_evolution(args):
    """DDR-CHI and PSNR (clean) of each checkpoint of a training run; a CSV and a dual-axis figure."""
    from ddrsr.analysis.evolution import checkpoint_evolution, list_checkpoints, network_options, write_csv
    from ddrsr.loader import build_generator
    from ddrsr.analysis.plots import plot_evolution
    from ddrsr.analysis.scores import format_score
    from ddrsr.utils.device import resolve_device

    val_hr = args.val_hr or args.hr
    if not val_hr:
        raise DDRSRError('evolution measures PSNR on HR images: pass --hr DIR or --val_hr DIR')
    device = resolve_device(args.device)
    checkpoints = list_checkpoints(args.experiment, args.checkpoints)
    network_opt, scale = network_options(args.arch_from_model, args.opt, args.experiment)
    network = build_generator(network_opt)
    sets = _patch_sets(args, scale)
    rows = checkpoint_evolution(network, checkpoints, args.layer, sets, val_hr, scale, runs=args.runs,
                                perplexity=args.perplexity, crop_size=args.crop_size,
                                meta_info=args.meta_info if val_hr == args.hr else None, seed=args.seed,
                                device=device)
    for row in rows:
        chi = format_score({'mean': row['chi_mean'], 'std': row['chi_std']})
        print(f'iter {row["iteration"]}: DDR-CHI {chi}, '
              f'PSNR(clean) {row["psnr_clean"]:.2f} dB', file=sys.stderr)
    csv_path = write_csv(rows, os.path.join(args.output, 'evolution.csv'))
    title = f'{args.layer}: DDR-CHI and PSNR over training'
    plot = plot_evolution([r['iteration'] for r in rows], [r['chi_mean'] for r in rows],
                          [r['chi_std'] for r in rows], [r['psnr_clean'] for r in rows],
                          _figure_path(args, 'evolution.png'), title=title)
    return {'layer': args.layer, 'sets': list(sets), 'scale': scale, 'csv': csv_path, 'plot': plot, 'rows': rows}


def add_subcommands(subparsers):
    analyze = parser_with_example(
        subparsers, 'analyze', 'DDR-CHI: how clearly a layer\'s features cluster by degradation (t-SNE + CHI).',
        'ddrsr analyze --model srgan_encoder_x4_lite --layer body.7 --hr datasets/debian_photos/hr '
        '--meta_info scripts/debian_photos_val.txt --specs clean blur2 noise20 --plot ddr.png')
    network = analyze.add_mutually_exclusive_group(required=True)
    network.add_argument('--model', help='zoo model name')
    network.add_argument('--opt', help='any BasicSR option file: its network_g is built and --weights loaded into it')
    analyze.add_argument('--weights', help='checkpoint for that architecture (with --model: instead of the shipped '
                         'weights; with --opt: required)')
    analyze.add_argument('--layer', required=True, action='append',
                         help='layer name from named_modules(), e.g. body.7 (repeat for several layers)')
    _add_set_arguments(analyze, 'results/analyze')
    analyze.set_defaults(func=cmd_analyze)

    generalization = parser_with_example(
        subparsers, 'generalization', 'DDR-CHI per model on the same sets: lower = generalizes better.',
        'ddrsr generalization --model rrdb_ddr_bn_x4_lite --model rrdb_bn_x4_lite --hr datasets/debian_photos/hr '
        '--meta_info scripts/debian_photos_val.txt')
    generalization.add_argument('--model', required=True, action='append', help='zoo model name (repeat)')
    generalization.add_argument('--layer', action='append', default=[],
                                help='layer for all models, or one per --model (default: last block of body)')
    _add_set_arguments(generalization, 'results/generalization')
    generalization.set_defaults(func=cmd_generalization)

    evolution = parser_with_example(
        subparsers, 'evolution', 'DDR-CHI and PSNR (clean) of each checkpoint of a training run.',
        'ddrsr evolution --experiment experiments/srgan_encoder_x4_lite --layer body.7 --hr datasets/debian_photos/hr '
        '--meta_info scripts/debian_photos_val.txt')
    checkpoints = evolution.add_mutually_exclusive_group(required=True)
    checkpoints.add_argument('--experiment', help='BasicSR experiment folder (uses models/net_g_<iter>.pth)')
    checkpoints.add_argument('--checkpoints', nargs='+', help='checkpoint files, e.g. net_g_500.pth net_g_1000.pth')
    arch = evolution.add_mutually_exclusive_group()
    arch.add_argument('--arch_from_model', help='zoo model name whose architecture the checkpoints have')
    arch.add_argument('--opt', help='option file whose network_g builds the architecture '
                                    '(default: the one BasicSR copied into --experiment)')
    evolution.add_argument('--layer', required=True, help='layer name from named_modules(), e.g. body.7')
    evolution.add_argument('--val_hr', help='HR folder for PSNR on clean inputs (default: --hr)')
    evolution.add_argument('--crop_size', type=int, default=192, help='centre crop for PSNR (default: 192)')
    _add_set_arguments(evolution, 'results/evolution')
    evolution.set_defaults(func=cmd_evolution)
