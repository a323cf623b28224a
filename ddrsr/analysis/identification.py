"""Distortion identification: can a method tell GB, WN, JPEG, JP2K and FF apart on unseen photos?

Three methods on the same :class:`~ddrsr.analysis.distortions.DistortionSet` (train and test photos
disjoint), as in Liu et al.'s Table on LIVE:

* ``ddr``: features of an SR network at a named layer (by default the DDR encoder, the SRGAN generator
  ``srgan_encoder_x4_lite`` at ``body.7``) on the centre crop fed as the LR input, flattened, then
  standardised -> PCA to 120 -> ``LinearSVC`` (the paper's recipe).
* ``ddr_stats``: the same layer summarised by each channel's mean and std over space (what the DDR
  encoder pools), then the same SVM pipeline. Not in the paper; flattened maps also encode *where*
  the content lies, which the SVM must learn to ignore from few photos.
* ``brisque``: the 36 BRISQUE features -> the same SVM pipeline.
* ``resnet18``: a timm resnet18 trained from scratch on the training split (supervised upper line).

Scores: per-class precision (of the samples predicted as a class, the share that has it) and overall
accuracy, on the test split.
"""
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ddrsr.archs.module_utils import get_layer, run_until
from ddrsr.errors import DDRSRError
from ddrsr.utils.markdown import markdown_table, write_text

from .brisque import brisque_batch
from .classifiers import fit_predict_svm, predict, train_resnet18
from .distortions import CLASSES

from ddrsr.defaults import IDENTIFY_METHODS as METHODS  # noqa: E402
FEATURE_KINDS = {'ddr': 'flat', 'ddr_stats': 'stats'}


@torch.no_grad()
def layer_features(model, layer, dataset, index, kinds=('flat', ), pool=1, batch_size=16, device='cpu',
                   progress=True):
    """Features of ``layer`` for the samples ``index`` of ``dataset``, in one pass, for each of ``kinds``.

    * ``flat``: the feature map flattened, ``(n, C * h * w / pool²)``. ``pool > 1`` first averages
      ``pool`` x ``pool`` cells, to bound memory (the ``body.7`` map of a 96x96 crop has 294,912 values).
    * ``stats``: each channel's mean and standard deviation over space, ``(n, 2C)``; the statistics the
      DDR encoder of ``ddrsr.archs`` pools, and blind to where in the crop the content lies.

    Returns:
        dict: ``{kind: np.ndarray}``.
    """
    get_layer(model, layer)
    model.eval()
    rows = {kind: [] for kind in kinds}
    for start in tqdm(range(0, len(index), batch_size), desc=f'features {layer}', unit='batch', file=sys.stderr,
                      disable=not progress, leave=False):
        output = run_until(model, layer, dataset.tensors(index[start:start + batch_size]).to(device)).float()
        if 'flat' in rows:
            rows['flat'].append((F.avg_pool2d(output, pool) if pool > 1 else output).flatten(1).cpu().numpy())
        if 'stats' in rows:
            rows['stats'].append(torch.cat([output.mean((2, 3)), output.std((2, 3))], 1).cpu().numpy())
    return {kind: np.concatenate(parts) for kind, parts in rows.items()}


def scores(truth, predicted):
    """``{'precision': {class: p}, 'accuracy': a, 'confusion': K x K list}`` (rows: truth, columns: predicted)."""
    from sklearn.metrics import confusion_matrix, precision_score

    labels = list(range(len(CLASSES)))
    precision = precision_score(truth, predicted, labels=labels, average=None, zero_division=0)
    return {'precision': {name: float(p) for name, p in zip(CLASSES, precision)},
            'accuracy': float(np.mean(np.asarray(truth) == np.asarray(predicted))),
            'confusion': confusion_matrix(truth, predicted, labels=labels).tolist()}


def _ddr_features(dataset, train, test, options):
    """Train and test features of every DDR kind the methods ask for, computed once (one forward pass)."""
    if 'ddr_features' not in options:
        kinds = [FEATURE_KINDS[m] for m in options['methods'] if m in FEATURE_KINDS]
        keyword = dict(kinds=kinds, pool=options['pool'], device=options['device'], progress=options['progress'])
        options['ddr_features'] = (layer_features(options['model'], options['layer'], dataset, train, **keyword),
                                   layer_features(options['model'], options['layer'], dataset, test, **keyword))
    return options['ddr_features']


def _run_ddr(dataset, train, test, options, kind='flat'):
    train_features, test_features = _ddr_features(dataset, train, test, options)
    # The arrays are ours and can be large (2 GB for 1,700 flat body.7 maps): standardise them in place.
    train_x, test_x = train_features.pop(kind), test_features.pop(kind)
    dim = int(train_x.shape[1])
    predicted, pipeline = fit_predict_svm(train_x, dataset.labels[train], test_x, options['pca_dim'], options['seed'],
                                          in_place=True)
    return predicted, {'layer': options['layer'], 'features': kind, 'feature_dim': dim,
                       'pca_dim': int(pipeline[-2].n_components_)}


def _run_ddr_stats(dataset, train, test, options):
    return _run_ddr(dataset, train, test, options, kind='stats')


def _run_brisque(dataset, train, test, options):
    bar = tqdm(total=2, desc='BRISQUE features', unit='split', file=sys.stderr, disable=not options['progress'],
               leave=False)
    train_x = brisque_batch(dataset.images[train])
    bar.update()
    test_x = brisque_batch(dataset.images[test])
    bar.close()
    predicted, pipeline = fit_predict_svm(train_x, dataset.labels[train], test_x, options['pca_dim'], options['seed'])
    return predicted, {'feature_dim': int(train_x.shape[1]), 'pca_dim': int(pipeline[-2].n_components_)}


def _run_resnet18(dataset, train, test, options):
    network = train_resnet18(dataset.tensors(train), dataset.labels[train], len(CLASSES), epochs=options['cnn_epochs'],
                             batch_size=options['cnn_batch'], lr=options['cnn_lr'], crop=options['cnn_crop'],
                             seed=options['seed'], device=options['device'], progress=options['progress'])
    predicted = predict(network, dataset.tensors(test), device=options['device'])
    return predicted, {'epochs': options['cnn_epochs'], 'train_crop': options['cnn_crop']}


_RUNNERS = {'ddr': _run_ddr, 'ddr_stats': _run_ddr_stats, 'brisque': _run_brisque, 'resnet18': _run_resnet18}


def identify(dataset, methods=METHODS, model=None, layer='body.7', pca_dim=120, pool=1, cnn_epochs=10, cnn_batch=32,
             cnn_lr=1e-3, cnn_crop=64, seed=0, device='cpu', progress=True):
    """Train each method on the training photos of ``dataset`` and score it on the test photos.

    Args:
        dataset (DistortionSet): from :func:`~ddrsr.analysis.distortions.build_distortion_set`.
        methods (list[str]): any of :data:`METHODS`.
        model (nn.Module): network for ``ddr`` and ``ddr_stats`` (any ``nn.Module`` taking ``(B, 3, h, w)``);
            ``layer`` names one of its ``named_modules()``.
        pca_dim (int): PCA components before the SVM (capped by training samples and feature size).
        pool (int): average-pool factor of the DDR feature map (1: the full map).
        cnn_*: resnet18 epochs, batch size, learning rate and random-crop size.

    Returns:
        dict: ``{method: {'precision': {class: p}, 'accuracy': a, 'confusion': [...], 'seconds': s, ...}}``.
    """
    methods = list(dict.fromkeys(methods))  # each method once, in the order given
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise DDRSRError(f'unknown or no --methods {", ".join(unknown)}; choose from {", ".join(METHODS)}')
    if any(m in FEATURE_KINDS for m in methods):
        if model is None:
            raise DDRSRError('the ddr methods need a model (--model)')
        get_layer(model, layer)  # a misspelt layer fails before any work
    if pool < 1:
        raise DDRSRError(f'--pool must be at least 1, got {pool}')
    options = dict(methods=methods, model=model, layer=layer, pca_dim=pca_dim, pool=pool, cnn_epochs=cnn_epochs,
                   cnn_batch=cnn_batch, cnn_lr=cnn_lr, cnn_crop=cnn_crop, seed=seed, device=device, progress=progress)
    train, test = dataset.train_index, dataset.test_index
    results = {}
    for method in methods:
        started = time.perf_counter()
        predicted, details = _RUNNERS[method](dataset, train, test, options)
        results[method] = {**scores(dataset.labels[test], predicted), **details,
                           'seconds': round(time.perf_counter() - started, 1)}
        print(f'{method}: accuracy {results[method]["accuracy"]:.3f} '
              f'({results[method]["seconds"]:.0f} s)', file=sys.stderr)
    return results


def identification_markdown(results, names=None):
    """The paper-shaped table: one row per method, columns GB, WN, JPEG, JP2K, FF (precision), ALL (accuracy)."""
    names = names or {}
    rows = [[names.get(method, method), *(f'{result["precision"][name]:.3f}' for name in CLASSES),
             f'**{result["accuracy"]:.3f}**'] for method, result in results.items()]
    return '\n'.join(markdown_table(['method', *CLASSES, 'ALL'], rows, align='l' + 'r' * (len(CLASSES) + 1))) + '\n'


def plot_confusions(results, path, names=None):
    """One confusion-matrix panel per method (row-normalised), accuracy in each title. Returns ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = names or {}
    figure = Figure(figsize=(3.6 * len(results), 3.8))
    FigureCanvasAgg(figure)
    for index, (method, result) in enumerate(results.items()):
        confusion = np.asarray(result['confusion'], dtype=float)
        rates = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
        axes = figure.add_subplot(1, len(results), index + 1)
        axes.imshow(rates, vmin=0, vmax=1, cmap='Blues')
        for (row, column), value in np.ndenumerate(rates):
            axes.text(column, row, f'{value:.2f}', ha='center', va='center', fontsize=7,
                      color='white' if value > 0.6 else 'black')
        axes.set_xticks(range(len(CLASSES)), CLASSES, fontsize=8)
        axes.set_yticks(range(len(CLASSES)), CLASSES, fontsize=8)
        axes.set_xlabel('predicted', fontsize=8)
        axes.set_ylabel('true', fontsize=8)
        axes.set_title(f'{names.get(method, method)}\naccuracy {result["accuracy"]:.3f}', fontsize=9)
    figure.suptitle('Distortion identification on unseen photos (rows: true class)', fontsize=10)
    figure.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    figure.savefig(path, dpi=110, bbox_inches='tight')
    return path


def write_identification_report(results, dataset_summary, out, names=None):
    """Write ``identification.md``, ``identification.json`` and ``identification.png`` into ``out``.

    Returns:
        dict: ``{'markdown': path, 'json': path, 'plot': path, 'table': markdown text}``.
    """
    os.makedirs(out, exist_ok=True)
    table = identification_markdown(results, names)
    paths = {key: os.path.join(out, f'identification.{ext}') for key, ext in (('markdown', 'md'), ('json', 'json'),
                                                                                ('plot', 'png'))}
    write_text(paths['markdown'], table)
    write_text(paths['json'], json.dumps({'dataset': dataset_summary, 'results': results}, indent=2))
    plot_confusions(results, paths['plot'], names)
    return {**paths, 'table': table}
