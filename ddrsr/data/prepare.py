"""Cut an HR folder into training sub-image crops with a BasicSR meta-info file (``scripts/prepare_dataset.py``).

Near-flat crops are skipped: a crop is kept only if the mean local standard deviation of its luminance, over
7x7 windows in 0-255 units, reaches ``min_detail``.
"""
import os

import cv2
import numpy as np
from tqdm import tqdm

from ddrsr.data.image_io import list_images
from ddrsr.errors import DDRSRError


def detail_score(crop_bgr):
    """Mean local standard deviation of luminance (0-255) over 7x7 windows; ~0 for flat regions."""
    grey = cv2.cvtColor(crop_bgr, cv2.COLOR_BGR2GRAY).astype(np.float32)
    if crop_bgr.dtype == np.uint16:
        grey /= 257.0
    mean = cv2.blur(grey, (7, 7))
    sq_mean = cv2.blur(grey * grey, (7, 7))
    return float(np.sqrt(np.clip(sq_mean - mean * mean, 0, None)).mean())


def crop_positions(length, crop, step):
    """Start offsets covering ``length`` with ``crop``-sized windows every ``step``, plus one at the end."""
    if length < crop:
        return []
    positions = list(range(0, length - crop + 1, step))
    if positions[-1] != length - crop:
        positions.append(length - crop)
    return positions


def read_exclusions(path):
    if not path:
        return set()
    with open(path) as f:
        return {os.path.splitext(line.strip())[0] for line in f if line.strip() and not line.startswith('#')}


def prepare(input_dir, output_dir, crop_size=256, step=256, min_detail=4.0, exclude=(), meta_info=None,
            progress=True):
    """Write the crops and the meta-info file; returns ``(kept, skipped_flat)`` counts."""
    paths = [p for p in list_images(input_dir) if os.path.splitext(os.path.basename(p))[0] not in set(exclude)]
    os.makedirs(output_dir, exist_ok=True)
    names, skipped = [], 0
    for path in tqdm(paths, desc='cropping', unit='photo', disable=not progress):
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            raise DDRSRError(f'cannot read image {path!r}')
        stem = os.path.splitext(os.path.basename(path))[0]
        index = 0
        for top in crop_positions(image.shape[0], crop_size, step):
            for left in crop_positions(image.shape[1], crop_size, step):
                crop = image[top:top + crop_size, left:left + crop_size]
                index += 1
                if detail_score(crop) < min_detail:
                    skipped += 1
                    continue
                name = f'{stem}_s{index:03d}.png'
                cv2.imwrite(os.path.join(output_dir, name), crop, [cv2.IMWRITE_PNG_COMPRESSION, 1])
                names.append(name)
    meta_info = meta_info or os.path.join(os.path.dirname(os.path.abspath(output_dir)),
                                          f'meta_info_{os.path.basename(os.path.normpath(output_dir))}.txt')
    with open(meta_info, 'w') as f:
        f.writelines(f'{name} ({crop_size},{crop_size},3)\n' for name in names)
    return len(names), skipped, meta_info
