"""Small image helpers for datasets and scripts: list image files, read RGB float tensors."""
import os

import cv2
import numpy as np
import torch

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
    """Read an image file as float32 RGB ``(H, W, 3)`` in [0, 1] (8- or 16-bit; grey becomes RGB)."""
    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if image is None and str(path).lower().endswith('.gif'):  # OpenCV builds without GIF: Pillow reads it
        image = _read_with_pillow(path)
    if image is None:
        raise DDRSRError(f'cannot read image {path!r}: missing, truncated or not an image')
    scale = 65535.0 if image.dtype == np.uint16 else 255.0
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        image = image[:, :, :3]
    return image[:, :, ::-1].astype(np.float32) / scale


def _read_with_pillow(path):
    """``(H, W, 3)`` uint8 BGR (OpenCV's order) of an image Pillow can read, or None."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return np.ascontiguousarray(np.asarray(image.convert('RGB'))[:, :, ::-1])
    except Exception:
        return None


def to_tensor(image):
    """``(H, W, 3)`` numpy RGB -> ``(3, H, W)`` float tensor."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))


def mod_crop(image, scale):
    """Crop ``(H, W, C)`` so that H and W are multiples of ``scale`` (as BasicSR does for GT)."""
    height, width = image.shape[:2]
    return image[:height - height % scale, :width - width % scale]
