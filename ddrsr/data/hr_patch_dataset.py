"""HR-only training data: random patches; the model synthesizes the LQ on its device."""
import random

import numpy as np
from torch.utils import data

from basicsr.utils.registry import DATASET_REGISTRY

from ddrsr.errors import DDRSRError
from .image_io import list_images, read_rgb, to_tensor


@DATASET_REGISTRY.register()
class HRPatchDataset(data.Dataset):
    """Random ``gt_size`` crops of HR images with flips and 90-degree rotations.

    Option keys: ``dataroot_gt`` (folder), ``meta_info`` (optional list, from
    ``scripts/prepare_dataset.py``), ``gt_size``, ``use_hflip``, ``use_rot``.

    Returns ``{'gt': (3, gt_size, gt_size) float tensor in [0, 1], 'gt_path': str}``; no ``lq``.
    """
    OPTION_KEYS = ('dataroot_gt', 'meta_info', 'gt_size', 'use_hflip', 'use_rot')

    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        self.paths = list_images(opt['dataroot_gt'], opt.get('meta_info'))
        self.gt_size = int(opt['gt_size'])
        scale = int(opt.get('scale', 1))
        if self.gt_size % scale:
            raise DDRSRError(f'gt_size {self.gt_size} must be a multiple of the scale {scale}')

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        path = self.paths[index]
        image = read_rgb(path)
        height, width = image.shape[:2]
        if height < self.gt_size or width < self.gt_size:
            raise DDRSRError(f'{path} ({width}x{height}) is smaller than gt_size {self.gt_size}; '
                             're-run scripts/prepare_dataset.py with a larger crop size or lower gt_size')
        top = random.randint(0, height - self.gt_size)
        left = random.randint(0, width - self.gt_size)
        patch = image[top:top + self.gt_size, left:left + self.gt_size]
        if self.opt.get('use_hflip', True) and random.random() < 0.5:
            patch = patch[:, ::-1]
        if self.opt.get('use_rot', True):
            if random.random() < 0.5:
                patch = patch[::-1]
            if random.random() < 0.5:
                patch = np.transpose(patch, (1, 0, 2))
        return {'gt': to_tensor(patch), 'gt_path': path}
