"""``ddrsr identify`` and ``ddrsr classification-vs-sr``: distortion identification and content vs degradation.

The logic lives in ``ddrsr/analysis``; these functions only read arguments, load models and write files.
"""
import os
import sys

from ddrsr.cli._common import add_device, parser_with_example
from ddrsr.errors import DDRSRError

METHOD_NAMES = {'ddr': 'DDR ({model}:{layer}) + SVM', 'ddr_stats': 'DDR mean+std ({model}:{layer}) + SVM',
                'brisque': 'BRISQUE + SVM', 'resnet18': 'ResNet18 (supervised)'}


def _read_list(path):
    if not os.path.isfile(path):
        raise DDRSRError(f'--test_list file {path!r} does not exist')
    with open(path) as f:
        return [line.split(' ')[0].strip() for line in f if line.strip()]


def cmd_identify(args):
    """Distortion identification (GB, WN, JPEG, JP2K, FF) on photos unseen in training."""
    import time

    from ddrsr.analysis.distortions import build_distortion_set
    from ddrsr.analysis.identification import METHODS, identify, write_identification_report
    from ddrsr.archs.module_utils import get_layer
    from ddrsr.utils.device import resolve_device
    from ddrsr.loader import load

    started = time.perf_counter()
    unknown = [method for method in args.methods if method not in METHODS]
    if unknown:  # checked before the (slow) distortion set is built, as are the model and layer below
        raise DDRSRError(f'unknown --methods {", ".join(unknown)}; choose from {", ".join(METHODS)}')
    device = resolve_device(args.device)
    model = (load(args.model, weights=args.weights, device=device).network
             if {'ddr', 'ddr_stats'} & set(args.methods) else None)
    if model is not None:
        get_layer(model, args.layer)
    dataset = build_distortion_set(args.hr, args.meta_info, regions=args.regions, size=args.size, crop=args.crop,
                                   short_side=args.short_side, test_fraction=args.test_fraction,
                                   test_names=_read_list(args.test_list) if args.test_list else None, seed=args.seed)
    summary = dataset.summary()
    print(f'{summary["train_samples"]} training samples from {len(summary["train_photos"])} photos, '
          f'{summary["test_samples"]} test samples from {len(summary["test_photos"])} other photos', file=sys.stderr)
    results = identify(dataset, args.methods, model=model, layer=args.layer, pca_dim=args.pca, pool=args.pool,
                       cnn_epochs=args.cnn_epochs, cnn_batch=args.cnn_batch, cnn_lr=args.cnn_lr, cnn_crop=args.cnn_crop,
                       seed=args.seed, device=device)
    names = {method: label.format(model=args.model, layer=args.layer) for method, label in METHOD_NAMES.items()}
    report = write_identification_report(results, summary, args.output, names)
    print(report['table'], file=sys.stderr)
    return {'dataset': summary, 'results': results, 'table_markdown': report['table'], 'markdown': report['markdown'],
            'json': report['json'], 'plot': report['plot'], 'seconds': round(time.perf_counter() - started, 1)}


def cmd_classification_vs_sr(args):
    """CHI by content and by degradation for a content classifier (timm resnet18) and an SR network."""
    from ddrsr.analysis.classifiers import build_resnet18
    from ddrsr.analysis.content_vs_degradation import (build_content_sets, compare_networks,
                                                       plot_content_vs_degradation, train_content_classifier)
    from ddrsr.archs.module_utils import get_layer
    from ddrsr.utils.device import resolve_device
    from ddrsr.loader import load

    device = resolve_device(args.device)
    loaded = load(args.model, weights=args.weights, device=device)
    model = loaded.network
    layers = list(dict.fromkeys(args.layer or ['body.7']))
    for layer in layers:
        get_layer(model, layer)
    get_layer(build_resnet18(2), args.classifier_layer)  # misspelt layers fail before any training
    sets = build_content_sets(args.hr, args.specs, args.meta_info, photos=args.photos, patch=args.patch,
                              scale=loaded.scale, patches=args.patches, train_patches=args.train_patches,
                              train_specs=args.train_specs, short_side=args.short_side, seed=args.seed,
                              photos_per_class=args.photos_per_class)
    classifier, accuracy = train_content_classifier(sets, epochs=args.epochs, seed=args.seed, device=device)
    print('content classifier accuracy on held-out patches: ' + ', '.join(
        f'{spec} {value:.3f}' for spec, value in accuracy.items()), file=sys.stderr)
    sr_networks = {(args.model if len(layers) == 1 else f'{args.model}:{layer}'): (model, layer) for layer in layers}
    results = compare_networks(sets, {'resnet18 (content classifier)': (classifier, args.classifier_layer),
                                      **sr_networks}, runs=args.runs, perplexity=args.perplexity, device=device)
    plot = plot_content_vs_degradation(results, sets, args.plot or os.path.join(args.output, 'classification_vs_sr.png'))
    networks = {name: {'layer': r['layer'], 'dim': r['dim'], 'chi_content': r['content']['chi'],
                       'chi_degradation': r['degradation']['chi']} for name, r in results.items()}
    return {'photos': sets['photos'], 'photos_per_class': args.photos_per_class, 'specs': sets['specs'], 'points': int(len(sets['lr'])), 'runs': args.runs,
            'classifier_accuracy': accuracy, 'networks': networks, 'plot': plot}


def add_subcommands(subparsers):
    """Register ``identify`` and ``classification-vs-sr``."""
    from ddrsr.defaults import IDENTIFY_METHODS as METHODS

    identify = parser_with_example(
        subparsers, 'identify', 'Distortion identification (GB, WN, JPEG, JP2K, FF): DDR vs BRISQUE vs ResNet18.',
        'ddrsr identify --hr datasets/debian_photos/hr --test_list scripts/debian_photos_val.txt --regions 2 '
        '--output results/identify')
    identify.add_argument('--hr', required=True, help='folder of photos (split into training and test photos)')
    identify.add_argument('--meta_info', help='file listing the photos of --hr to use (default: all)')
    split = identify.add_mutually_exclusive_group()
    split.add_argument('--test_list', help='file naming the test photos (the others train)')
    split.add_argument('--test_fraction', type=float, default=0.3,
                       help='share of photos drawn (seeded) as test photos (default: 0.3)')
    identify.add_argument('--regions', type=int, default=4, help='regions per photo (default: 4)')
    identify.add_argument('--size', type=int, default=128, help='region size that is distorted (default: 128)')
    identify.add_argument('--crop', type=int, default=96, help='centre crop fed to the methods (default: 96)')
    identify.add_argument('--short_side', type=int, default=512,
                          help='resize photos to this short side first, 0 = no resize (default: 512)')
    identify.add_argument('--methods', nargs='+', default=list(METHODS), help=f'subset of {" ".join(METHODS)}')
    identify.add_argument('--model', default='srgan_encoder_x4_lite', help='zoo model for DDR features')
    identify.add_argument('--weights', help='checkpoint for that architecture instead of the shipped weights')
    identify.add_argument('--layer', default='body.7', help='layer of --model (default: body.7)')
    identify.add_argument('--pca', type=int, default=120, help='PCA components before the SVM (default: 120)')
    identify.add_argument('--pool', type=int, default=1,
                          help='average-pool the DDR feature map by this factor to save memory (default: 1, none)')
    identify.add_argument('--cnn_epochs', type=int, default=10, help='resnet18 training epochs (default: 10)')
    identify.add_argument('--cnn_batch', type=int, default=32, help='resnet18 batch size (default: 32)')
    identify.add_argument('--cnn_lr', type=float, default=1e-3, help='resnet18 AdamW learning rate (default: 1e-3)')
    identify.add_argument('--cnn_crop', type=int, default=64, help='resnet18 random training crop (default: 64)')
    identify.add_argument('--seed', type=int, default=0, help='split, regions, noise, bit errors, training')
    identify.add_argument('--output', default='results/identify', help='folder for the table, JSON and figure')
    add_device(identify)
    identify.set_defaults(func=cmd_identify)

    versus = parser_with_example(
        subparsers, 'classification-vs-sr',
        'CHI by content and by degradation: a content classifier (resnet18) vs an SR network.',
        'ddrsr classification-vs-sr --hr datasets/debian_photos/hr --photos 8 --specs clean blur2 noise20 '
        '--output results/classification_vs_sr')
    versus.add_argument('--hr', required=True, help='folder of photos; each photo is one content class')
    versus.add_argument('--meta_info', help='file listing the photos of --hr to use (default: all)')
    versus.add_argument('--photos', type=int, default=8, help='number of content classes (default: 8)')
    versus.add_argument('--photos_per_class', type=int, default=1,
                        help='photos in each content class; 1: each photo is a class (default: 1)')
    versus.add_argument('--specs', nargs='+', default=['clean', 'blur2', 'noise20'],
                        help='degradations of the analysed patches (default: clean blur2 noise20)')
    versus.add_argument('--train_specs', nargs='+', default=['clean'],
                        help='degradations of the classifier\'s training patches (default: clean)')
    versus.add_argument('--patch', type=int, default=32, help='LR patch size (default: 32)')
    versus.add_argument('--patches', type=int, default=16, help='analysed patches per photo (default: 16)')
    versus.add_argument('--train_patches', type=int, default=256, help='training patches per photo (default: 256)')
    versus.add_argument('--short_side', type=int, default=768, help='resize photos to this short side (default: 768)')
    versus.add_argument('--epochs', type=int, default=15, help='classifier training epochs (default: 15)')
    versus.add_argument('--model', default='srgan_encoder_x4_lite', help='zoo SR model (default: the DDR encoder)')
    versus.add_argument('--weights', help='checkpoint for that architecture instead of the shipped weights')
    versus.add_argument('--layer', action='append', help='layer of the SR model, repeat for several (default: body.7)')
    versus.add_argument('--classifier_layer', default='global_pool',
                        help='layer of the timm resnet18 (default: global_pool, 512 values)')
    versus.add_argument('--runs', type=int, default=5, help='t-SNE runs, seeds 0..runs-1 (default: 5)')
    versus.add_argument('--perplexity', type=float, help='t-SNE perplexity (default: 30)')
    versus.add_argument('--seed', type=int, default=0)
    versus.add_argument('--output', default='results/classification_vs_sr', help='folder for the figure')
    versus.add_argument('--plot', help='write the figure to this PNG instead of into --output')
    add_device(versus)
    versus.set_defaults(func=cmd_classification_vs_sr)
