"""Inputs for FAIG: HR crops from a folder and their LR versions under named degradation specs."""
import torch

from ddrsr.data.degradations import degrade_with_spec, parse_spec
from ddrsr.data.image_io import list_images
from ddrsr.data.patches import grid_crops
from ddrsr.errors import DDRSRError

# The order in which spec tokens are joined, as in the named specs (``blur2_noise20``).
_TOKEN_ORDER = ('blur', 'noise', 'jpeg')


def hr_crops(hr_dir, crop=96, count=10, seed=0, meta_info=None, scale=4, paths=None):
    """``(N, 3, crop, crop)`` HR crops in [0, 1]: a seeded choice of grid crops of the images in ``hr_dir``.

    The crops lie on a non-overlapping grid centred in each image (the DDR analysis' patches), so large
    photos give many candidates and ``count`` of them are drawn with ``seed``. ``crop`` must be a
    multiple of ``scale``. ``paths`` (a list of image files) replaces ``hr_dir``/``meta_info``.
    """
    if crop < scale or crop % scale:
        raise DDRSRError(f'--crop must be a positive multiple of the scale {scale}, got {crop}')
    if count < 1:
        raise DDRSRError(f'--images must be at least 1, got {count}')
    return grid_crops(paths if paths is not None else list_images(hr_dir, meta_info), crop, count, seed)


def split_images(hr_dir, meta_info=None):
    """``(test_paths, fit_paths)``: the images of ``hr_dir`` split alternately, so no photo is in both."""
    paths = list_images(hr_dir, meta_info)
    if len(paths) < 2:
        raise DDRSRError(f'{hr_dir!r} has one image; held-out prediction needs two or more, or give --fit_hr')
    return paths[0::2], paths[1::2]


def degrade(hr, spec, scale=4, seed=0):
    """LR of ``hr`` ``(N, 3, H, W)`` under the named ``spec``: ``(N, 3, H // scale, W // scale)``.

    The seed is fixed per call, so every method and every masked model sees the same noisy pixels.
    """
    with torch.no_grad():
        return degrade_with_spec(hr, spec, scale, seed=seed)


def combine_specs(first, second):
    """The spec with both degradations, e.g. ``blur2`` + ``noise20`` -> ``blur2_noise20``.

    Raises DDRSRError when both specs set the same kind of degradation (``blur2`` + ``blur4``).
    """
    tokens = {}
    for name in (parse_spec(first).name, parse_spec(second).name):
        if name == 'clean':
            continue
        for token in name.split('_'):
            kind = token.rstrip('0123456789.')
            if kind in tokens:
                raise DDRSRError(f'cannot combine {first!r} and {second!r}: both contain a {kind} step; '
                                 'give --specs explicitly')
            tokens[kind] = token
    if not tokens:
        return 'clean'
    return parse_spec('_'.join(tokens[kind] for kind in _TOKEN_ORDER if kind in tokens)).name
