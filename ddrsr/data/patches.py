"""Patch primitives shared by the analysis, FAIG and inference: grid crops, centre crops, seeded chunked degrading.

>>> centre_crop(torch.zeros(1, 3, 10, 6), 4).shape
torch.Size([1, 3, 4, 4])
>>> centre_crop(np.zeros((10, 6, 3)), 8).shape     # numpy images are (H, W, C); never larger than the input
(8, 6, 3)
>>> grid_positions(10, 10, 4)                      # non-overlapping 4x4 cells, centred in a 10x10 image
[(1, 1), (1, 5), (5, 1), (5, 5)]
"""
import numpy as np
import torch

from ddrsr.errors import DDRSRError

#: Degrading in fixed-size chunks, each with its own seed, keeps the LR patches identical whatever the number of
#: patches asked for (the first k patches do not change when more are asked for) and whatever the batch sizes.
DEGRADE_CHUNK = 32


def centre_crop(image, size):
    """Centre crop to at most ``size x size`` (unchanged where smaller).

    A tensor is cropped on its last two dimensions (``(B, C, H, W)``, ``(C, H, W)``); a numpy image on its first
    two (``(H, W)`` or ``(H, W, C)``).
    """
    if isinstance(image, torch.Tensor):
        height, width = image.shape[-2:]
    else:
        height, width = image.shape[:2]
    ch, cw = min(height, size), min(width, size)
    top, left = (height - ch) // 2, (width - cw) // 2
    if isinstance(image, torch.Tensor):
        return image[..., top:top + ch, left:left + cw]
    return image[top:top + ch, left:left + cw]


def grid_positions(height, width, size):
    """Top-left corners of the non-overlapping ``size`` x ``size`` grid, centred in an H x W image."""
    rows, cols = height // size, width // size
    top0, left0 = (height - rows * size) // 2, (width - cols * size) // 2
    return [(top0 + r * size, left0 + c * size) for r in range(rows) for c in range(cols)]


def choose(count, num_patches, seed):
    """Sorted indices of ``min(count, num_patches)`` of ``count`` candidates, fixed by ``seed`` (all for None)."""
    if num_patches is None or count <= num_patches:
        return np.arange(count)
    return np.sort(np.random.RandomState(seed).choice(count, num_patches, replace=False))


def image_size(path):
    """``(height, width)`` from the file header (cheap); decodes the image only when Pillow cannot."""
    from PIL import Image

    from ddrsr.data.image_io import read_rgb

    try:
        with Image.open(path) as image:
            width, height = image.size
        return height, width
    except Exception:  # formats Pillow does not know: let OpenCV decode it (and report unreadable files)
        return read_rgb(path).shape[:2]


def grid_crops(paths, size, num_patches, seed):
    """``(N, 3, size, size)`` float crops in [0, 1]: a seeded choice of the grid crops of all images in ``paths``.

    Candidates come from image sizes alone, and each image is decoded only while its chosen crops are
    cut, so folders of large photos never sit in memory together. ``num_patches`` None takes every crop.
    """
    from ddrsr.data.image_io import read_rgb, to_tensor

    candidates = []
    for index, path in enumerate(paths):
        height, width = image_size(path)
        if min(height, width) < size:
            raise DDRSRError(f'{path}: image is {width}x{height}, smaller than the patch size {size}x{size}; '
                             'use larger images or a smaller --patch')
        candidates += [(index, top, left) for top, left in grid_positions(height, width, size)]
    chosen = [candidates[i] for i in choose(len(candidates), num_patches, seed)]
    crops = []
    for index in sorted({i for i, _, _ in chosen}):
        image = read_rgb(paths[index])
        crops += [to_tensor(image[top:top + size, left:left + size]) for i, top, left in chosen if i == index]
    return torch.stack(crops)


def degrade_chunked(hr, spec, scale, seed, chunk=DEGRADE_CHUNK):
    """``degrade_with_spec`` of ``hr`` ``(N, 3, H, W)`` in chunks of ``chunk``, chunk k seeded ``seed + k``.

    Returns ``(N, 3, H // scale, W // scale)``; row i does not depend on N (see :data:`DEGRADE_CHUNK`).
    """
    from ddrsr.data.degradations import degrade_with_spec

    return torch.cat([degrade_with_spec(hr[i:i + chunk], spec, scale, seed=seed + i // chunk)
                      for i in range(0, len(hr), chunk)])
