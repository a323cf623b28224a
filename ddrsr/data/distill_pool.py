"""Distillation pools: (LQ, HR, teacher SR) triples made once on the CPU, then read by :class:`DistillPoolDataset`.

Why a pool and not a teacher in the training step: on 2 CPU cores the full-size teacher (``rrdb_ddr_real_x4``, bf16)
takes ~2.0 s for a batch of 16 LR crops of 32 px, longer than the lite student's whole training step (~1.2 s).
Running it once per crop and reading its outputs back triples the iterations a session buys; the price is a fixed
set of degraded crops (seen with the 8 flips/rotations) instead of fresh ones every step.

A pool is a folder of ``.npy`` arrays, written in batches and resumable (``progress.json`` counts the finished
samples; a re-run continues from there):

* ``lq.npy``: ``(N, 3, h, w)`` float16, the degraded LR in [0, 1];
* ``gt.npy``, ``teacher.npy``: ``(N, 3, h*scale, w*scale)`` uint8, the HR crop and the teacher's output;
* ``jpeg_quality.npy``: ``(N,)`` float32, the JPEG quality the LR was saved at (0 = none; the larger of the
  pre- and post-noise saves' qualities where both ran, so nonzero means "went through JPEG");
* ``pool.json``: what made it (teacher, degradation options, seed, scale, sizes).
"""
import json
import os
import random

import numpy as np
import torch
from torch.utils import data
from tqdm import tqdm

from basicsr.utils.registry import DATASET_REGISTRY

from ddrsr.errors import DDRSRError
from .degradations import degrade

POOL_ARRAYS = ('lq', 'gt', 'teacher', 'jpeg_quality')
#: Which samples a pool's teacher output is a target for (``distill_where``): every one, or those that went
#: through JPEG (the damage the lite model fails to remove and the full model removes).
DISTILL_WHERE = ('all', 'jpeg')


def _to_uint8(images):
    return (images.float().clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def _open_arrays(folder, num_samples, lq_size, scale, resume):
    hr_size = lq_size * scale
    shapes = {'lq': ((num_samples, 3, lq_size, lq_size), np.float16),
              'gt': ((num_samples, 3, hr_size, hr_size), np.uint8),
              'teacher': ((num_samples, 3, hr_size, hr_size), np.uint8),
              'jpeg_quality': ((num_samples, ), np.float32)}
    arrays = {}
    for name, (shape, dtype) in shapes.items():
        path = os.path.join(folder, f'{name}.npy')
        if resume:
            arrays[name] = np.load(path, mmap_mode='r+')
            if arrays[name].shape != shape or arrays[name].dtype != dtype:
                raise DDRSRError(f'{path} is {arrays[name].shape} {arrays[name].dtype}, expected {shape} '
                                 f'{np.dtype(dtype)}: the pool was made with other settings; use a new folder')
        else:
            arrays[name] = np.lib.format.open_memmap(path, mode='w+', dtype=dtype, shape=shape)
    return arrays


def build_distill_pool(hr_dataset, degradation, teacher, folder, num_samples, scale=4, batch_size=16, seed=0,
                       teacher_precision='bf16', description=None, progress=True):
    """Write (or finish) a distillation pool in ``folder``.

    Args:
        hr_dataset: a dataset whose items are ``{'gt': (3, H, H) float tensor}`` random crops (``HRPatchDataset``
            with flips and rotations off: the reader adds them). Item ``i % len`` is read with Python's ``random``
            seeded from ``seed`` and ``i``, so a resumed pool gets the crops a single run would have.
        degradation (RandomDegradation): draws the per-sample damage.
        teacher (nn.Module): ``(B, 3, h, w) -> (B, 3, h*scale, w*scale)``, run without gradients.
        num_samples (int): pool size; a multiple of ``batch_size`` is not needed.
        teacher_precision (str): ``'bf16'`` (autocast; ~2x faster on CPUs with bf16 units, max abs difference
            ~0.025 from fp32 on the full model) or ``'fp32'``.
        description (dict): recorded in ``pool.json`` (what the teacher is).

    Returns: the folder.
    """
    if teacher_precision not in ('bf16', 'fp32'):
        raise DDRSRError(f'teacher_precision must be bf16 or fp32, got {teacher_precision!r}')
    os.makedirs(folder, exist_ok=True)
    hr_size = int(hr_dataset[0]['gt'].shape[-1])
    if hr_size % scale:
        raise DDRSRError(f'the HR crops ({hr_size} px) must be a multiple of the scale {scale}')
    meta = {'num_samples': int(num_samples), 'scale': int(scale), 'lq_size': hr_size // scale, 'seed': int(seed),
            'teacher_precision': teacher_precision, 'degradation': {k: (list(v) if isinstance(v, tuple) else v)
                                                                    for k, v in vars(degradation).items()},
            'teacher': description or {}}
    meta_path, progress_path = os.path.join(folder, 'pool.json'), os.path.join(folder, 'progress.json')
    resume = os.path.exists(progress_path)
    if resume:
        with open(meta_path, encoding='utf-8') as f:
            old = json.load(f)
        if old != json.loads(json.dumps(meta)):
            raise DDRSRError(f'{folder} holds a pool made with other settings ({meta_path}); use a new folder')
        with open(progress_path, encoding='utf-8') as f:
            done = int(json.load(f)['done'])
    else:
        done = 0
        with open(meta_path, 'w', encoding='utf-8') as f:
            json.dump(meta, f, indent=1)
    arrays = _open_arrays(folder, num_samples, hr_size // scale, scale, resume)
    teacher.eval()
    autocast = torch.autocast('cpu', dtype=torch.bfloat16, enabled=teacher_precision == 'bf16')
    bar = tqdm(total=num_samples, initial=done, desc='distill pool', unit='crop', disable=not progress)
    while done < num_samples:
        stop = min(done + batch_size, num_samples)
        crops = []
        for index in range(done, stop):
            random.seed(seed * 1_000_003 + index)
            crops.append(hr_dataset[index % len(hr_dataset)]['gt'])
        gt = torch.stack(crops)
        generator = torch.Generator().manual_seed(seed * 1_000_003 + done)
        with torch.no_grad():
            params = degradation.sample(len(crops), generator)
            lq = degrade(gt, params, scale, generator).clamp(0, 1)
            with autocast:
                output = teacher(lq)
        quality = params.jpeg_quality
        if params.jpeg_quality_pre is not None:
            quality = torch.maximum(quality, params.jpeg_quality_pre)
        arrays['lq'][done:stop] = lq.numpy().astype(np.float16)
        arrays['gt'][done:stop] = _to_uint8(gt)
        arrays['teacher'][done:stop] = _to_uint8(output)
        arrays['jpeg_quality'][done:stop] = quality.float().numpy()
        for array in arrays.values():
            array.flush()
        done = stop
        with open(progress_path, 'w', encoding='utf-8') as f:  # after the flush: a crash never counts unwritten rows
            json.dump({'done': done}, f)
        bar.update(stop - bar.n)
    bar.close()
    return folder


def _dihedral(array, flip, vertical, transpose):
    """The same flip / rotation of a ``(C, H, W)`` array, whatever its size (so LR and HR stay aligned)."""
    if flip:
        array = array[:, :, ::-1]
    if vertical:
        array = array[:, ::-1]
    if transpose:
        array = array.transpose(0, 2, 1)
    return np.ascontiguousarray(array)


@DATASET_REGISTRY.register()
class DistillPoolDataset(data.Dataset):
    """A finished distillation pool as training pairs with a teacher target.

    Option keys: ``dataroot`` (the pool folder, from ``scripts/make_distill_pool.py``), ``use_hflip``,
    ``use_rot``, ``distill_where`` (:data:`DISTILL_WHERE`; default ``jpeg``), ``distill_max_quality`` (with
    ``jpeg``: only samples saved at this JPEG quality or lower; default 100). Why a ceiling: at q 80-95 a JPEG is
    nearly clean, and there the teacher's sharper look is a target the student then also applies to clean photos.

    Returns ``{'lq': (3, h, w), 'gt': (3, H, W), 'teacher': (3, H, W)`` float tensors in [0, 1],
    ``'distill_weight': ()`` 1.0 where the teacher is a target for this sample, else 0.0, ``'gt_path': str}``.

    >>> # dataset = DistillPoolDataset({'dataroot': 'datasets/distill_pool_x4', 'distill_where': 'jpeg'})
    """
    OPTION_KEYS = ('dataroot', 'use_hflip', 'use_rot', 'distill_where', 'distill_max_quality')

    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        folder = opt['dataroot']
        progress_path = os.path.join(folder, 'progress.json')
        if not os.path.exists(progress_path):
            raise DDRSRError(f'{folder} is not a distillation pool (no progress.json); make one with '
                             'python scripts/make_distill_pool.py')
        with open(os.path.join(folder, 'pool.json'), encoding='utf-8') as f:
            self.meta = json.load(f)
        with open(progress_path, encoding='utf-8') as f:
            done = int(json.load(f)['done'])
        if done < self.meta['num_samples']:
            raise DDRSRError(f'{folder} is unfinished ({done} of {self.meta["num_samples"]} samples); re-run '
                             'python scripts/make_distill_pool.py with the same arguments to finish it')
        self.where = opt.get('distill_where', 'jpeg')
        if self.where not in DISTILL_WHERE:
            raise DDRSRError(f'distill_where must be one of {DISTILL_WHERE}, got {self.where!r}')
        self.max_quality = float(opt.get('distill_max_quality', 100))
        self.arrays = {name: np.load(os.path.join(folder, f'{name}.npy'), mmap_mode='r') for name in POOL_ARRAYS}
        self.folder = folder

    def __len__(self):
        return self.meta['num_samples']

    def __getitem__(self, index):
        transform = (self.opt.get('use_hflip', True) and random.random() < 0.5,
                     self.opt.get('use_rot', True) and random.random() < 0.5,
                     self.opt.get('use_rot', True) and random.random() < 0.5)
        lq = _dihedral(self.arrays['lq'][index], *transform).astype(np.float32)
        gt, teacher = (_dihedral(self.arrays[name][index], *transform).astype(np.float32) / 255
                       for name in ('gt', 'teacher'))
        quality = float(self.arrays['jpeg_quality'][index])
        weight = 1.0 if self.where == 'all' else float(0 < quality <= self.max_quality)
        return {'lq': torch.from_numpy(lq), 'gt': torch.from_numpy(gt), 'teacher': torch.from_numpy(teacher),
                'distill_weight': torch.tensor(weight), 'gt_path': f'{self.folder}#{index}'}


__all__ = ['DISTILL_WHERE', 'DistillPoolDataset', 'build_distill_pool']
