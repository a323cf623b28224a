"""Small image helpers for datasets and scripts: list image files, read RGB float tensors."""
import os

import numpy as np
import torch

from ddrsr.data.photo_io import read_image
from ddrsr.errors import DDRSRError

#: The one list of image file extensions (lower case) that every folder listing uses.
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.gif')


def find_images(folder, recursive=True):
    """Sorted image files in ``folder``: the one listing rule (extensions: :data:`IMAGE_EXTENSIONS`).

    ``recursive``: every matching file below ``folder`` (``os.walk``, links not followed). Otherwise the entries
    directly inside it that are not hidden and not folders; an entry that is not a readable regular file (a broken
    link, a symlink loop, a named pipe) is listed all the same, so that it fails with its own error line instead of
    being skipped without a word. Returns ``[]`` when there is none.
    """
    if recursive:
        return sorted(os.path.join(root, name) for root, _, files in os.walk(folder, followlinks=False)
                      for name in files if name.lower().endswith(IMAGE_EXTENSIONS))
    names = sorted(n for n in os.listdir(folder) if not n.startswith('.'))
    return [os.path.join(folder, n) for n in names
            if n.lower().endswith(IMAGE_EXTENSIONS) and not os.path.isdir(os.path.join(folder, n))]


def list_images(folder, meta_info=None):
    """Sorted image paths under ``folder`` (recursively), or the ones a BasicSR meta-info file names."""
    if not os.path.isdir(folder):
        raise DDRSRError(f'image folder {folder!r} does not exist; check the path (dataroot_gt / -i)')
    if meta_info:
        if not os.path.isfile(meta_info):
            raise DDRSRError(f'meta_info file {meta_info!r} does not exist; create it with scripts/prepare_dataset.py')
        with open(meta_info) as f:
            names = [line.split(' ')[0].strip() for line in f if line.strip()]
        paths = [os.path.join(folder, n) for n in names]
    else:
        paths = find_images(folder)
    if not paths:
        raise DDRSRError(f'no images ({", ".join(IMAGE_EXTENSIONS)}) found in {folder!r}')
    return paths


def read_rgb(path):
    """Read an image file as float32 RGB ``(H, W, 3)`` in [0, 1] (8- or 16-bit; grey becomes RGB; alpha dropped).

    The photo reader of inference (:func:`ddrsr.data.photo_io.read_image`, EXIF orientation applied) without a
    pixel limit: training, evaluation and inference see the same pixels of the same file.
    """
    return read_image(path, max_pixels=None).rgb


def to_tensor(image):
    """``(H, W, 3)`` numpy RGB -> ``(3, H, W)`` float tensor."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))


def mod_crop(image, scale):
    """Crop ``(H, W, C)`` so that H and W are multiples of ``scale`` (as BasicSR does for GT)."""
    height, width = image.shape[:2]
    return image[:height - height % scale, :width - width % scale]
