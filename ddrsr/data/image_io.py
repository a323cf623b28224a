"""Small image helpers for datasets and scripts: list image files, read RGB float tensors."""
import os

import cv2
import numpy as np
import torch

from ddrsr.errors import DDRSRError

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')


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
        paths = sorted(
            os.path.join(root, name) for root, _, files in os.walk(folder, followlinks=False) for name in files
            if name.lower().endswith(IMAGE_EXTENSIONS))
    if not paths:
        raise DDRSRError(f'no images ({", ".join(IMAGE_EXTENSIONS)}) found in {folder!r}')
    return paths


def read_rgb(path):
    """Read an image file as float32 RGB ``(H, W, 3)`` in [0, 1] (8- or 16-bit; grey becomes RGB)."""
    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DDRSRError(f'cannot read image {path!r}: missing, truncated or not an image')
    scale = 65535.0 if image.dtype == np.uint16 else 255.0
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        image = image[:, :, :3]
    return image[:, :, ::-1].astype(np.float32) / scale


def to_tensor(image):
    """``(H, W, 3)`` numpy RGB -> ``(3, H, W)`` float tensor."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))


def mod_crop(image, scale):
    """Crop ``(H, W, C)`` so that H and W are multiples of ``scale`` (as BasicSR does for GT)."""
    height, width = image.shape[:2]
    return image[:height - height % scale, :width - width % scale]
