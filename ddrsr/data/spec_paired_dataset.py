"""Validation pairs made on the fly with one named degradation spec (deterministic)."""
import os

import torch
from torch.utils import data

from basicsr.utils.registry import DATASET_REGISTRY

from .degradations import degrade_with_spec, parse_spec
from .image_io import list_images, mod_crop, read_rgb, to_tensor
from .patches import centre_crop


@DATASET_REGISTRY.register()
class SpecPairedDataset(data.Dataset):
    """HR images and their LQ under a fixed spec such as ``blur2_noise20``.

    Image ``i`` is degraded with seed ``seed + i`` on the CPU, so every run, every model and
    ``ddrsr degrade`` see the same LQ. Option keys: ``dataroot_gt``, ``meta_info``, ``spec``,
    ``crop_size`` (optional centre crop of the HR, in HR pixels), ``seed``.

    Returns ``{'lq': (3, h, w), 'gt': (3, h*scale, w*scale), 'lq_path': str, 'gt_path': str}``.
    """
    OPTION_KEYS = ('dataroot_gt', 'meta_info', 'spec', 'crop_size', 'seed')

    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        self.paths = list_images(opt['dataroot_gt'], opt.get('meta_info'))
        self.spec = parse_spec(opt.get('spec', 'clean'))
        self.scale = int(opt.get('scale', 4))
        self.seed = int(opt.get('seed', 0))

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        path = self.paths[index]
        image = read_rgb(path)
        if self.opt.get('crop_size'):
            image = centre_crop(image, int(self.opt['crop_size']))
        gt = to_tensor(mod_crop(image, self.scale))
        with torch.no_grad():
            lq = degrade_with_spec(gt[None], self.spec, self.scale, seed=self.seed + index)[0]
        stem = os.path.splitext(os.path.basename(path))[0]
        return {'lq': lq, 'gt': gt, 'lq_path': f'{stem}_{self.spec.name}', 'gt_path': path}
