"""Patch sets that differ only in degradation, and deep features of any network at a named layer.

A *set* is ``(N, 3, p, p)`` LR patches in [0, 1]. All sets of one analysis hold the same N contents
(patch i of every set shows the same HR region), so whatever separates their features is the
degradation, not the picture (Liu et al., "Discovering Distinctive 'Semantics' in SR Networks").
"""
import os
import sys

import numpy as np
import torch
from tqdm import tqdm

from ddrsr.archs.module_utils import get_layer, run_until
from ddrsr.data.degradations import parse_spec
from ddrsr.data.image_io import list_images
from ddrsr.data.patches import choose, degrade_chunked, grid_crops
from ddrsr.errors import DDRSRError, check_image_batch

def _require_two(names):
    if len(names) < 2:
        raise DDRSRError(f'the analysis needs at least two sets to compare, got {len(names)} '
                         f'({", ".join(names) or "none"}); give several --specs or --sets name=DIR')


def _check_counts(patch, num_patches):
    if patch < 1 or num_patches < 1:
        raise DDRSRError(f'--patch and --patches must be positive, got {patch} and {num_patches}')


def check_sets(sets):
    """Raise DDRSRError unless ``sets`` maps >= 2 names to same-shaped float ``(N, 3, p, p)`` tensors, N >= 1."""
    _require_two(list(sets))
    for name, patches in sets.items():
        check_image_batch(patches, f'set {name!r}')
        if patches.shape[0] == 0:
            raise DDRSRError(f'set {name!r} must hold (N, 3, p, p) RGB patches with N >= 1, got none')
    sizes = {name: tuple(patches.shape) for name, patches in sets.items()}
    if len(set(sizes.values())) > 1:
        listing = ', '.join(f'{name}: {shape[0]} patches of {shape[2]}x{shape[3]}' for name, shape in sizes.items())
        raise DDRSRError(f'all sets must have the same number and size of patches (same contents, different '
                         f'degradations), got {listing}; give folders holding the same images')


@torch.no_grad()
def hr_patch_sets(hr_dir, specs, patch=32, scale=4, num_patches=100, seed=0, meta_info=None):
    """Cut the same HR patches once and degrade them with each named spec.

    Args:
        hr_dir (str): folder of HR images; each must be at least ``patch * scale`` pixels on a side.
        specs (list[str]): named degradations (``clean``, ``blur2``, ``noise20``, ...); at least two.
        patch (int): LR patch size p; HR patches are ``p * scale``, non-overlapping, on a centred grid.
        num_patches (int): patches per set (all grid patches when fewer exist), chosen with ``seed``.
        seed (int): picks the patches and seeds the degradations.
        meta_info (str, optional): a BasicSR meta-info file naming the images of ``hr_dir`` to use.

    Returns:
        dict: ``{spec_name: (N, 3, p, p) float tensor}``, in the order of ``specs``.
    """
    names = [parse_spec(spec).name for spec in specs]
    if len(set(names)) != len(names):
        raise DDRSRError(f'--specs lists a degradation twice: {", ".join(names)}')
    _require_two(names)
    _check_counts(patch, num_patches)
    hr = grid_crops(list_images(hr_dir, meta_info), patch * scale, num_patches, seed)
    return {name: degrade_chunked(hr, name, scale, seed) for name in names}


def lr_patch_sets(set_dirs, patch=32, num_patches=100, seed=0):
    """Grid crops of LR folders, one set per folder.

    Args:
        set_dirs (dict): ``{set_name: folder}``; the folders should hold the same images under different
            degradations (e.g. written by ``ddrsr degrade``), so that crop i shows the same content in all.
        patch (int): crop size p; crops lie on a non-overlapping grid centred in each image.
        num_patches (int): crops per set; the same seeded choice of crop indices is used for every set.

    Returns:
        dict: ``{set_name: (N, 3, p, p) float tensor}``.
    """
    _require_two(list(set_dirs))
    _check_counts(patch, num_patches)
    # Cut everything first, compare counts, then choose: equal counts give equal choices.
    sets = {name: grid_crops(list_images(folder), patch, None, seed) for name, folder in set_dirs.items()}
    check_sets(sets)
    chosen = torch.from_numpy(choose(len(next(iter(sets.values()))), num_patches, seed))
    return {name: patches[chosen] for name, patches in sets.items()}


def parse_set_dirs(items):
    """``['clean=DIR', 'blur=DIR']`` -> ``{'clean': 'DIR', 'blur': 'DIR'}`` (DDRSRError on bad items)."""
    set_dirs = {}
    for item in items:
        name, sep, folder = item.partition('=')
        if not sep or not name or not folder:
            raise DDRSRError(f'--sets takes NAME=FOLDER items, got {item!r}')
        if name in set_dirs:
            raise DDRSRError(f'--sets names {name!r} twice')
        if not os.path.isdir(folder):
            raise DDRSRError(f'set {name!r}: folder {folder!r} does not exist; check the path')
        set_dirs[name] = folder
    return set_dirs


@torch.no_grad()
def extract_features(model, layer, patches, batch_size=50, device=None, progress=True, desc=None):
    """Flattened output of ``layer`` for each patch.

    The forward pass stops once ``layer`` has run (``run_until``), so deep layers of big networks
    cost no more than needed. The model runs in ``eval()`` mode and gets its previous mode back.

    Args:
        model (nn.Module): any network whose forward takes ``(B, 3, p, p)``.
        layer (str): a name from ``model.named_modules()``.
        patches (Tensor): float ``(N, 3, p, p)`` (DDRSRError otherwise).
        device: where to run (default: where the model's parameters are).

    Returns:
        np.ndarray: ``(N, C * h * w)`` float32, where ``(C, h, w)`` is the layer's output per patch.
    """
    check_image_batch(patches, 'extract_features: patches')
    get_layer(model, layer)  # a misspelt layer fails here, before any work
    if device is None:
        parameter = next(model.parameters(), None)
        device = parameter.device if parameter is not None else torch.device('cpu')
    was_training = model.training
    model.eval()
    rows = []
    try:
        for start in tqdm(range(0, len(patches), batch_size), desc=desc or f'features {layer}', unit='batch',
                          file=sys.stderr, disable=not progress, leave=False):
            batch = patches[start:start + batch_size].to(device)
            rows.append(run_until(model, layer, batch).flatten(1).float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(rows).numpy()


def extract_set_features(model, layer, sets, batch_size=50, device=None, progress=True):
    """Features of every set, stacked: ``{name: (N, 3, p, p)}`` -> ``(K * N, D)`` array and ``(K * N,)`` labels.

    Labels are set indices ``0..K-1`` in the order of ``sets``.
    """
    check_sets(sets)
    features, labels = [], []
    for index, (name, patches) in enumerate(sets.items()):
        features.append(extract_features(model, layer, patches, batch_size, device, progress,
                                         desc=f'features {layer} [{name}]'))
        labels.append(np.full(len(patches), index))
    return np.concatenate(features), np.concatenate(labels)
