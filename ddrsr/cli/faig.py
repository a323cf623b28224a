"""``ddrsr faig``, ``ddrsr faig-mask`` and ``ddrsr faig-predict``: argument handling and file output only.

The work is done by :mod:`ddrsr.faig`; models load through :func:`ddrsr.loader.load`.
"""
import json
import os
import sys
import time

from ddrsr.cli._common import add_device, parser_with_example
from ddrsr.errors import DDRSRError
from ddrsr.utils.markdown import write_text

DEFAULT_ARCH = 'rrdb_bn_x4_lite'
MODEL_HELP = ('zoo model name (its shipped weights) or checkpoint path (BasicSR .pth; the architecture comes '
              'from --arch)')


def load_faig_model(value, arch, device, role):
    """A zoo model by name, or checkpoint ``value`` loaded into zoo architecture ``arch``: a ``LoadedModel``."""
    from ddrsr.loader import load
    from ddrsr.zoo import MODELS

    if value in MODELS:
        return load(value, device=device)
    if not os.path.isfile(value):
        raise DDRSRError(f'--{role} {value!r} is neither a zoo model name ({", ".join(sorted(MODELS))}) nor a '
                         'checkpoint file; check the path')
    return load(arch, weights=value, device=device, name=os.path.basename(value),
                hint=f'they are not weights for --arch {arch!r}; pass the zoo name of their architecture')


def _models(args, device, baseline=True):
    from ddrsr.faig import check_same_architecture

    target = load_faig_model(args.target, args.arch, device, 'target')
    if not baseline:
        return None, target
    base = load_faig_model(args.baseline, args.arch, device, 'baseline')
    check_same_architecture(base.network, target.network)
    return base, target


def _load_rankings(paths):
    from ddrsr.faig import Ranking

    return [Ranking.load(path) for path in paths]


def cmd_faig(args):
    """Rank every conv filter of the target for --deg against --vs; write the ranking JSON and a depth plot."""
    from ddrsr.data.degradations import parse_spec
    from ddrsr.faig import FilterIndex, attribute, layer_counts
    from ddrsr.faig.data import hr_crops
    from ddrsr.faig.plots import plot_layer_distribution
    from ddrsr.utils.device import resolve_device

    deg, vs = parse_spec(args.deg).name, parse_spec(args.vs).name  # bad specs fail before any loading
    device = resolve_device(args.device)
    baseline, target = _models(args, device)
    hr = hr_crops(args.hr, args.crop, args.images, args.seed, args.meta_info, target.scale)
    began = time.perf_counter()
    ranking = attribute(baseline.network, target.network, hr, deg, vs, args.method, args.steps, target.scale,
                        args.batch, args.seed)
    ranking.settings.update({'baseline': args.baseline, 'target': args.target, 'arch': args.arch, 'hr': args.hr,
                             'meta_info': args.meta_info, 'crop': args.crop})
    filters = FilterIndex(target.network)
    output = args.output or os.path.join('results', 'faig', f'ranking_{args.method}_{deg}_vs_{vs}.json')
    ranking.save(output, filters)
    counts = {f'top {args.percent:g} % for {ranking.spec(which)}': layer_counts(ranking, filters, args.percent, which)
              for which in ('deg', 'vs')}
    plot = plot_layer_distribution(counts, {layer.name: layer.count for layer in filters.layers},
                                   args.plot or os.path.splitext(output)[0] + '_layers.png',
                                   f'{args.method}: where the discovered filters sit ({deg} vs {vs})')
    top = ranking.order('deg')[:10]
    print(f'{args.method}: ranked {len(filters)} filters of {len(filters.layers)} conv layers on {len(hr)} images '
          f'in {time.perf_counter() - began:.1f} s -> {output}', file=sys.stderr)
    return {'method': args.method, 'deg': deg, 'vs': vs, 'num_filters': len(filters), 'output': output,
            'plot': plot, 'settings': ranking.settings,
            'top': [dict(zip(('layer', 'o', 'i'), filters.describe(int(k))), score=float(ranking.score[k]))
                    for k in top],
            'layers_with_top_filters': {label: {k: v for k, v in c.items() if v} for label, c in counts.items()}}


def cmd_faig_mask(args):
    """Mask the top-p % filters of each ranking (baseline's filters into the target); PSNR table + plot."""
    from ddrsr.faig.data import hr_crops
    from ddrsr.faig.masking import masking_markdown, masking_table
    from ddrsr.faig.plots import plot_psnr_drop
    from ddrsr.utils.device import resolve_device

    rankings = _load_rankings(args.ranking)
    device = resolve_device(args.device)
    baseline, target = _models(args, device)
    hr = hr_crops(args.hr, args.crop, args.images, args.seed, args.meta_info, target.scale)
    table = masking_table(baseline.network, target.network, rankings, hr, args.specs, args.percents, target.scale,
                          args.seed, args.batch)
    table.update({'rankings': args.ranking, 'baseline': args.baseline, 'target': args.target, 'hr': args.hr})
    markdown = write_text(os.path.join(args.output, 'masking.md'), masking_markdown(table))
    table_json = write_text(os.path.join(args.output, 'masking.json'), json.dumps(table, indent=2))
    plot = plot_psnr_drop(table, os.path.join(args.output, 'masking_drop.png'))
    print(masking_markdown(table), file=sys.stderr)
    return {**table, 'markdown': markdown, 'json': table_json, 'plot': plot}


def cmd_faig_predict(args):
    """Predict blur/noise/both/none from the discovered filters' activations; accuracy on held-out images."""
    from ddrsr.faig.data import hr_crops, split_images
    from ddrsr.faig.prediction import prediction_accuracy, prediction_markdown
    from ddrsr.utils.device import resolve_device

    rankings = _load_rankings(args.ranking)
    device = resolve_device(args.device)
    _, target = _models(args, device, baseline=False)
    if args.fit_hr:
        test_paths, fit_paths = None, None
        fit_hr = hr_crops(args.fit_hr, args.crop, args.fit_images, args.seed, args.fit_meta_info, target.scale)
        test_hr = hr_crops(args.hr, args.crop, args.images, args.seed, args.meta_info, target.scale)
    else:
        test_paths, fit_paths = split_images(args.hr, args.meta_info)
        fit_hr = hr_crops(None, args.crop, args.fit_images, args.seed, scale=target.scale, paths=fit_paths)
        test_hr = hr_crops(None, args.crop, args.images, args.seed, scale=target.scale, paths=test_paths)
    results = [prediction_accuracy(target.network, ranking, fit_hr, test_hr, args.percent, target.scale, args.seed,
                                   args.batch) for ranking in rankings]
    markdown = write_text(os.path.join(args.output, 'prediction.md'), prediction_markdown(results))
    result = {'rankings': args.ranking, 'target': args.target, 'hr': args.hr, 'fit_hr': args.fit_hr or args.hr,
              'split': 'alternate images of --hr' if fit_paths else 'separate folders', 'percent': args.percent,
              'results': results}
    result_json = write_text(os.path.join(args.output, 'prediction.json'), json.dumps(result, indent=2))
    print(prediction_markdown(results), file=sys.stderr)
    return {**result, 'markdown': markdown, 'json': result_json}


# ----------------------------------------------------------------------------------------------------
def _add_models(parser, baseline=True):
    if baseline:
        parser.add_argument('--baseline', required=True, help=f'the clean model: {MODEL_HELP}')
    role = 'the blind model fine-tuned from it' if baseline else 'the blind model the ranking was made on'
    parser.add_argument('--target', required=True, help=f'{role}: {MODEL_HELP}')
    parser.add_argument('--arch', default=DEFAULT_ARCH,
                        help=f'zoo model name whose architecture checkpoint paths have (default: {DEFAULT_ARCH}, '
                             'the plain lite RRDBNet of rrdb_clean_x4_lite and rrdb_bn_x4_lite)')


def _add_images(parser, images=10, crop=96):
    parser.add_argument('--hr', required=True, help='folder of HR images; --images grid crops are drawn from it')
    parser.add_argument('--meta_info', help='file listing the images of --hr to use (default: all)')
    parser.add_argument('--images', type=int, default=images, help=f'number of HR crops (default: {images})')
    parser.add_argument('--crop', type=int, default=crop, help=f'HR crop size, a multiple of the scale '
                                                               f'(default: {crop})')
    parser.add_argument('--seed', type=int, default=0, help='picks the crops and seeds the degradations (default: 0)')
    parser.add_argument('--batch', type=int, default=10, help='images per forward/backward (default: 10)')


def add_subcommands(subparsers):
    """Register faig, faig-mask and faig-predict on ``ddrsr``'s subparsers ."""
    from ddrsr.defaults import FAIG_METHODS as METHODS, FAIG_PERCENTS as PERCENTS

    faig = parser_with_example(
        subparsers, 'faig', 'FAIG: rank every conv filter of the target by how specific it is to --deg against --vs.',
        'ddrsr faig --baseline rrdb_clean_x4_lite --target rrdb_bn_x4_lite --hr datasets/debian_photos/hr '
        '--meta_info scripts/debian_photos_val.txt --deg blur2 --vs noise20 -o ranking.json\n'
        '  ddrsr faig --baseline clean.pth --target bn.pth --arch rrdb_bn_x4_lite --hr HR_DIR --method ig\n\n'
        'Models: a zoo name loads its shipped weights; a checkpoint path is loaded into the architecture of the\n'
        'zoo model --arch. Baseline and target must have the same architecture (the target fine-tuned from the\n'
        'baseline). The JSON lists every filter (layer, o, i, score), most specific to --deg first; a second\n'
        'figure shows in which layers the top --percent % sit.')
    _add_models(faig)
    _add_images(faig)
    faig.add_argument('--deg', default='blur2', help='the degradation to find filters for (default: blur2)')
    faig.add_argument('--vs', default='noise20', help='the degradation to contrast it with (default: noise20)')
    faig.add_argument('--method', default='faig', choices=METHODS, help='attribution method (default: faig)')
    faig.add_argument('--steps', type=int, default=100, help='M, points on the integration path (default: 100)')
    faig.add_argument('-o', '--output', help='ranking JSON (default: results/faig/ranking_<method>_<deg>_vs_<vs>.json)')
    faig.add_argument('--plot', help='per-layer distribution PNG (default: next to --output, *_layers.png)')
    faig.add_argument('--percent', type=float, default=1.0, help='top %% of filters drawn in the plot (default: 1)')
    add_device(faig)
    faig.set_defaults(func=cmd_faig)

    mask = parser_with_example(
        subparsers, 'faig-mask', 'Copy the baseline\'s filters into the target at each ranking\'s top p percent '
        'and measure PSNR.',
        'ddrsr faig-mask --baseline rrdb_clean_x4_lite --target rrdb_bn_x4_lite --ranking results/faig/ranking_*.json '
        '--hr datasets/debian_photos/hr --meta_info scripts/debian_photos_val.txt --seed 1\n\n'
        'For each ranking the filters for its --deg and for its --vs are masked in turn. Writes masking.md,\n'
        'masking.json and masking_drop.png (PSNR drop against p) into --output.')
    _add_models(mask)
    mask.add_argument('--ranking', required=True, nargs='+',
                      help='ranking JSON files from `ddrsr faig` (one per method)')
    _add_images(mask)
    mask.add_argument('--percents', type=float, nargs='+', default=list(PERCENTS),
                      help='p values in %% of all filters (default: 1 3 5 10)')
    mask.add_argument('--specs', nargs='+',
                      help='inputs to measure (default: the ranking\'s deg, vs and both combined)')
    mask.add_argument('--output', default='results/faig', help='folder for the table and plot (default: results/faig)')
    add_device(mask)
    mask.set_defaults(func=cmd_faig_mask)

    predict = parser_with_example(
        subparsers, 'faig-predict', 'Predict the degradation (none, deg, vs, both) of unseen inputs from the '
        'discovered filters\' activations, with no labels.',
        'ddrsr faig-predict --target rrdb_bn_x4_lite --ranking results/faig/ranking_faig_blur2_vs_noise20.json '
        '--hr datasets/debian_photos/hr --meta_info scripts/debian_photos_val.txt '
        '--fit_hr datasets/debian_photos/train_sub --fit_meta_info datasets/debian_photos/meta_info_train_sub.txt\n\n'
        'Rule: score = mean over the top --percent % filters for a degradation of log(activation relative to\n'
        'its layer) minus its mean on clean LR references; a 2-means split of the unlabelled fit pool (fit\n'
        'images under clean, deg, vs and both, labels dropped) sets the threshold, and the clean references\'\n'
        'side means "absent". Without --fit_hr, the images of --hr are split alternately into test and fit\n'
        'images.')
    _add_models(predict, baseline=False)
    predict.add_argument('--ranking', required=True, nargs='+', help='ranking JSON files from `ddrsr faig`')
    _add_images(predict, images=20)
    predict.add_argument('--fit_hr', help='folder of HR images for fitting (default: half of the images of --hr)')
    predict.add_argument('--fit_meta_info', help='file listing the images of --fit_hr to use')
    predict.add_argument('--fit_images', type=int, default=40, help='HR crops for fitting (default: 40)')
    predict.add_argument('--percent', type=float, default=1.0, help='top %% filters per degradation (default: 1)')
    predict.add_argument('--output', default='results/faig', help='folder for prediction.md/json (default: results/faig)')
    add_device(predict)
    predict.set_defaults(func=cmd_faig_predict)
