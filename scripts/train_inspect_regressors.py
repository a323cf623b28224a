#!/usr/bin/env python
"""Fit the DDR degradation regressors behind ``ddrsr inspect`` and write them as a small ``.npz``.

    python scripts/train_inspect_regressors.py --weights results/rrdb_ddr_real_x4_lite_clean.pth
    python scripts/train_inspect_regressors.py -o weights/inspect_regressors_lite.npz     # the shipped file

Data: ONLY the training crops (``datasets/debian_photos/train_sub``); the validation photos
(scripts/debian_photos_val.txt) are never used here, so that docs/INSPECT.md measures on unseen photos.
Each crop (256 px HR) goes through the named pipeline (``ddrsr.data.degradations.degrade``: bicubic x1/4,
isotropic Gaussian blur on the LR, Gaussian colour noise, JPEG, 8-bit rounding) with random parameters:
blur sigma U(0.3, 4) with probability 1/2 (else none), noise sigma U(1, 30) with probability 1/2, JPEG q
U{30..95} with probability 1/2; and once more with each named spec (for the nearest-spec classifier).

Features: the frozen encoder generator's pooled features of the 64 px LR patch (``DDREncoder.pooled``).
Heads: ridge and RBF SVR (C 10 and 100) are fitted for blur, noise and JPEG q; the one with the lower MAE in 5-fold
cross-validation grouped by source photo (no photo on both sides) is refitted on all training crops and kept.

Strength table: for each named spec, the ``--strength`` with the best PSNR (Y, border 4) on a few training
crops, for the model given (it needs the model's clean embedding; see scripts/compute_clean_embedding.py).
``ddrsr inspect`` recommends the confidence-weighted mean of these over the nearest-spec probabilities.
Prints a JSON summary (chosen kinds, cross-validated MAEs, the strength table).
"""
import argparse
import json
import os
import re
import sys
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import ddrsr  # noqa: E402

ddrsr.register()  # basicsr's registries
from ddrsr.utils.cli_flags import add_hidden_aliases  # noqa: E402
from ddrsr.data.degradations import NAMED_SPECS, DegradationParams, degrade, degrade_with_spec  # noqa: E402
from ddrsr.data.image_io import list_images, read_rgb, to_tensor  # noqa: E402
from ddrsr.errors import DDRSRError  # noqa: E402
from ddrsr.inspection.regressors import (FORMAT_VERSION, DDRRegressors, encoder_fingerprint, fit_classifier,  # noqa: E402
                                      fit_regressor, pooled_features, predict_head)
from ddrsr.inspection.inspector import strength_head  # noqa: E402
from ddrsr.weights.manifest import MANIFEST_NAME, state_fingerprint, write_manifest  # noqa: E402
from ddrsr.loader import load  # noqa: E402
from ddrsr.zoo import DEFAULT_MODEL  # noqa: E402

TRAIN_HR = os.path.join(ROOT, 'datasets', 'debian_photos', 'train_sub')
TRAIN_META = os.path.join(ROOT, 'datasets', 'debian_photos', 'meta_info_train_sub.txt')
DEFAULT_OUTPUT = os.path.join(ROOT, 'weights', 'inspect_regressors_lite.npz')
STRENGTH_GRID = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5)


def photo_of(path):
    """The source photo of a training crop (``NAME_s007.png`` -> ``NAME``)."""
    return re.sub(r'_s\d+$', '', os.path.splitext(os.path.basename(path))[0])


def load_crops(paths, hr_size=256):
    crops = []
    for path in paths:
        image = read_rgb(path)
        top, left = (image.shape[0] - hr_size) // 2, (image.shape[1] - hr_size) // 2
        if top < 0 or left < 0:
            raise DDRSRError(f'{path} is smaller than {hr_size} px; the training crops are 256 px')
        crops.append(to_tensor(image[top:top + hr_size, left:left + hr_size]))
    return torch.stack(crops)


def random_params(count, rng):
    """Blur, noise and JPEG, each present with probability 1/2: ``(DegradationParams, targets (N, 3))``."""
    blur = np.where(rng.rand(count) < 0.5, rng.uniform(0.3, 4.0, count), 0.0)
    noise = np.where(rng.rand(count) < 0.5, rng.uniform(1.0, 30.0, count), 0.0)
    quality = np.where(rng.rand(count) < 0.5, rng.randint(30, 96, count), 0)

    def full(values):
        return torch.tensor(values, dtype=torch.float32)

    params = DegradationParams(sigma_x=full(blur), sigma_y=full(blur), theta=full(np.zeros(count)),
                               resize_modes=['bicubic'] * count, noise_sigma=full(noise),
                               gray_noise=torch.zeros(count, dtype=torch.bool), poisson_scale=full(np.zeros(count)),
                               jpeg_quality=full(quality), kernel_size=15, blur_stage='lr')
    return params, np.stack([blur, noise, quality], axis=1)


def random_set(model, crops, repeats, seed, scale=4, batch=32):
    """Features ``(N, F)``, targets ``(N, 3)`` (blur, noise, q; 0 = none) and crop indices ``(N,)``."""
    rng = np.random.RandomState(seed)
    index = np.tile(np.arange(len(crops)), repeats)
    features, targets = [], []
    for start in range(0, len(index), batch):
        chosen = index[start:start + batch]
        params, target = random_params(len(chosen), rng)
        with torch.no_grad():
            lq = degrade(crops[chosen], params, scale, torch.Generator().manual_seed(seed * 100003 + start))
        features.append(pooled_features(model.encoder, lq))
        targets.append(target)
    return np.concatenate(features), np.concatenate(targets), index


def spec_set(model, crops, specs, seed, scale=4, batch=32):
    features, labels = [], []
    for number, spec in enumerate(specs):
        for start in range(0, len(crops), batch):
            with torch.no_grad():
                lq = degrade_with_spec(crops[start:start + batch], spec, scale, seed=seed + 1000 * number + start)
            features.append(pooled_features(model.encoder, lq))
            labels += [spec] * len(lq)
    return np.concatenate(features), np.array(labels)


def choose_regressor(x, y, groups, folds=5):
    """Fit ridge and SVR candidates in ``folds``-fold cross-validation grouped by source photo (no photo in both
    the fitting and the checking part); return ``(kind, kwargs, {candidate: mean held-out MAE})``."""
    from sklearn.model_selection import GroupKFold

    candidates = {'ridge': ('ridge', {'alpha': 1.0}), 'svr_c10': ('svr', {'c': 10.0}), 'svr_c100': ('svr', {'c': 100.0})}
    maes = {}
    for name, (kind, kwargs) in candidates.items():
        errors = []
        for fit, held in GroupKFold(folds).split(x, y, groups):
            head = fit_regressor(x[fit], y[fit], kind, **kwargs)
            errors.append(float(np.abs(predict_head(head, x[held]) - y[held]).mean()))
        maes[name] = float(np.mean(errors))
    best = min(maes, key=maes.get)
    return candidates[best][0], candidates[best][1], maes


def strength_table(model, crops, specs, seed, scale=4):
    """PSNR (Y, border ``scale``) per spec and strength on ``crops``: ``(K, G)``."""
    from ddrsr.faig.masking import psnr_y

    table = np.zeros((len(specs), len(STRENGTH_GRID)))
    for row, spec in enumerate(specs):
        with torch.no_grad():
            lq = degrade_with_spec(crops, spec, scale, seed=seed + row)
            embedding = model.encode(lq)
            for col, strength in enumerate(STRENGTH_GRID):
                sr = model(lq, embedding=model.steer(embedding, strength))
                table[row, col] = np.mean(psnr_y(sr, crops, scale))
    return table


def fit_heads(model, paths, args):
    """Fit every regressor/classifier head on random and named-spec degradations of the training crops ``paths``.

    Returns ``(arrays, summary)``: the npz arrays and a JSON-able summary.
    """
    rng = np.random.RandomState(args.seed + 1)
    photos = np.array([photo_of(p) for p in paths])
    crops = load_crops(paths)

    features, targets, index = random_set(model, crops, args.repeats, args.seed)
    mean, scale = features.mean(0), features.std(0) + 1e-8
    x = (features - mean) / scale
    arrays = {'format_version': np.array(FORMAT_VERSION), 'feature_mean': mean, 'feature_scale': scale,
              'encoder_fingerprint': np.array(encoder_fingerprint(model.encoder)),
              'encoder_layer': np.array(model.encoder.layer)}
    summary = {'train_crops': len(paths), 'photos': len(set(photos)), 'samples': len(x), 'heads': {},
               'selection': '5-fold cross-validation grouped by source photo'}
    for column, name in enumerate(('blur', 'noise', 'jpeg_quality')):
        rows = targets[:, 2] > 0 if name == 'jpeg_quality' else np.ones(len(x), bool)
        y = targets[:, column]
        kind, kwargs, maes = choose_regressor(x[rows], y[rows], photos[index][rows])
        head = fit_regressor(x[rows], y[rows], kind, **kwargs)
        arrays.update({f'{name}.{k}': v for k, v in head.items()})
        summary['heads'][name] = {'chosen': kind, **kwargs, 'cross_validated_mae': maes}
    present = np.where(targets[:, 2] > 0, 'jpeg', 'none')
    head = fit_classifier(x, present, ['none', 'jpeg'])
    arrays.update({f'jpeg_present.{k}': v for k, v in head.items()})

    spec_crops = crops[np.sort(rng.permutation(len(crops))[:args.spec_crops])]
    spec_features, labels = spec_set(model, spec_crops, NAMED_SPECS, args.seed + 7)
    spec_x = (spec_features - mean) / scale
    head = fit_classifier(spec_x, labels, list(NAMED_SPECS))
    arrays.update({f'spec.{k}': v for k, v in head.items()})
    summary['heads']['spec'] = {'train_accuracy': float(np.mean(
        np.array(NAMED_SPECS)[predict_head(head, spec_x).argmax(1)] == labels))}

    return arrays, summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-n', '--model', default=DEFAULT_MODEL, help=f'zoo DDR model (default: {DEFAULT_MODEL})')
    parser.add_argument('--weights', help='its checkpoint (default: the shipped file); with a clean embedding for '
                        'the strength table')
    parser.add_argument('-o', '--output', default=DEFAULT_OUTPUT, help='npz to write (default: %(default)s)')
    parser.add_argument('--crops', type=int, default=1000, help='training crops used (default: 1000)')
    parser.add_argument('--repeats', type=int, default=3, help='random degradations per crop (default: 3)')
    parser.add_argument('--spec_crops', type=int, default=300, help='crops per named spec (default: 300)')
    parser.add_argument('--strength_crops', type=int, default=16, help='crops per spec for the strength table (default: 16)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--strength_only', action='store_true', help='keep the heads already in --output (they '
                        'depend only on the frozen encoder) and recompute only the strength table for this model')
    args = add_hidden_aliases(parser).parse_args(argv)
    started = time.time()
    torch.manual_seed(args.seed)
    try:
        model = load(args.model, weights=args.weights).network
        if not getattr(model, 'use_ddr', False):
            raise DDRSRError(f'model {args.model!r} has no DDR encoder; pass a DDR model with -n')
        paths = list_images(TRAIN_HR, TRAIN_META)
    except DDRSRError as error:
        print(f'train_inspect_regressors: error: {error}', file=sys.stderr)
        return 2
    paths = [paths[i] for i in np.sort(np.random.RandomState(args.seed).permutation(len(paths))[:args.crops])]
    if args.strength_only:
        try:
            arrays = DDRRegressors.load(args.output).arrays
        except DDRSRError as error:
            print(f'train_inspect_regressors: error: --strength_only needs the existing file: {error}', file=sys.stderr)
            return 2
        if str(arrays['encoder_fingerprint']) != encoder_fingerprint(model.encoder):
            print('train_inspect_regressors: error: the heads in --output were fitted on another encoder; run '
                  'without --strength_only', file=sys.stderr)
            return 2
        summary = {'kept_heads_from': args.output}
    else:
        arrays, summary = fit_heads(model, paths, args)
        if os.path.isfile(args.output):  # other models' strength tables key on their weights, not on the heads
            try:
                previous = DDRRegressors.load(args.output).arrays
            except DDRSRError:
                previous = {}
            arrays.update({k: v for k, v in previous.items() if k.startswith('strength@')})
    head = strength_head(args.model)
    # This model's table is replaced; so is the single table of files before per-model tables (its key hashed the
    # torch version, so no weights match it any more). Other models' tables stay.
    arrays = {k: v for k, v in arrays.items() if not k.startswith((head + '.', 'strength.'))}
    if model.has_clean_embedding:
        chosen = np.sort(np.random.RandomState(args.seed + 11).permutation(len(paths))[:args.strength_crops])
        table = strength_table(model, load_crops([paths[i] for i in chosen]), NAMED_SPECS, args.seed + 11)
        best = np.array(STRENGTH_GRID)[table.argmax(1)]
        arrays.update({f'{head}.specs': np.array(NAMED_SPECS), f'{head}.grid': np.array(STRENGTH_GRID),
                       f'{head}.psnr': table, f'{head}.best': best,
                       f'{head}.sr_fingerprint': np.array(state_fingerprint(model)),
                       f'{head}.sr_model': np.array(args.model)})
        summary['strength_best'] = dict(zip(NAMED_SPECS, best.tolist()))
    else:
        print('train_inspect_regressors: the model has no clean embedding, so no strength table is written '
              '(inspect will recommend 1); see scripts/compute_clean_embedding.py', file=sys.stderr)
    regressors = DDRRegressors(arrays)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    regressors.save(args.output)
    folder = os.path.dirname(os.path.abspath(args.output))
    if os.path.isfile(os.path.join(folder, MANIFEST_NAME)):  # a shipped weights folder: keep its sha256 list true,
        write_manifest(folder)  # or every later load of the file (inspect, the reports) refuses it
    summary.update(output=args.output, bytes=os.path.getsize(args.output), seconds=round(time.time() - started, 1))
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
