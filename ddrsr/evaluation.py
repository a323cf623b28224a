"""Quality of a model (or bicubic) on the fixed validation crops, per named degradation spec.

PSNR and SSIM are computed as in BasicSR: on the Y channel of 8-bit images, after cropping ``scale``
pixels at the border. NIQE (no reference, lower is better) is BasicSR's too, on the output alone. The LQ inputs come from :class:`~ddrsr.data.SpecPairedDataset`, so these
numbers use exactly the images that training validation uses.
"""
import os

import torch
import torch.nn.functional as F
from basicsr.metrics import calculate_niqe, calculate_psnr, calculate_ssim
from basicsr.utils import tensor2img
from tqdm import tqdm

from ddrsr.data.spec_paired_dataset import SpecPairedDataset
from ddrsr.errors import DDRSRError


def bicubic_upscaler(scale):
    """An "upscaler" ``(B, 3, h, w) -> (B, 3, h*scale, w*scale)`` that is plain bicubic interpolation."""
    def upscale(lq):
        return F.interpolate(lq, scale_factor=scale, mode='bicubic', align_corners=False).clamp(0, 1)

    return upscale


NIQE_BLOCK = 96  # basicsr's NIQE block size; it fits a covariance over blocks, so it needs at least two


def _check_niqe_size(shape, border, path):
    height, width = (side - 2 * border for side in shape)
    if (height // NIQE_BLOCK) * (width // NIQE_BLOCK) < 2:
        raise DDRSRError(f'NIQE needs outputs with at least two {NIQE_BLOCK}x{NIQE_BLOCK} blocks after the '
                         f'{border}-pixel border crop, but {path} gives {height}x{width}; use a larger --crop_size '
                         f'(>= {2 * NIQE_BLOCK + 2 * border}) or drop --niqe')


@torch.inference_mode()
def evaluate(upscale, hr_dir, specs, scale=4, meta_info=None, crop_size=192, seed=0, device='cpu', niqe=False,
             progress=True):
    """Mean PSNR/SSIM (Y channel, border ``scale``) per spec, and NIQE of the outputs if ``niqe``.

    Args:
        upscale (callable): ``(B, 3, h, w) -> (B, 3, h*scale, w*scale)``, e.g. a model in eval mode.
        hr_dir (str): folder of HR images; ``meta_info`` optionally lists the files to use.
        specs (list[str]): named degradation specs such as ``clean`` or ``blur2_noise20``.
        crop_size (int): centre crop of each HR image, in HR pixels.
        niqe (bool): also compute NIQE (slower: about as long as the model itself on a CPU).

    Returns:
        dict: ``{spec: {'psnr': float, 'ssim': float, 'count': int, 'per_image': {file name: PSNR}}}``, plus
        ``'niqe'`` if asked. The per-image PSNRs show when one image carries a mean (a few crops, one of them
        nearly flat, where every model's error is large in dB).
    """
    results = {}
    for spec in specs:
        dataset = SpecPairedDataset({'dataroot_gt': hr_dir, 'meta_info': meta_info, 'spec': spec, 'scale': scale,
                                     'crop_size': crop_size, 'seed': seed})
        psnrs, ssims, niqes, names = [], [], [], []
        for index in tqdm(range(len(dataset)), desc=f'evaluate {spec}', unit='img', disable=not progress):
            item = dataset[index]
            sr = upscale(item['lq'][None].to(device)).float().cpu().clamp(0, 1)
            sr_img, gt_img = tensor2img([sr[0]]), tensor2img([item['gt']])
            psnrs.append(float(calculate_psnr(sr_img, gt_img, crop_border=scale, test_y_channel=True)))
            names.append(os.path.basename(item['gt_path']))
            ssims.append(calculate_ssim(sr_img, gt_img, crop_border=scale, test_y_channel=True))
            if niqe:
                _check_niqe_size(sr_img.shape[:2], scale, item['gt_path'])
                niqes.append(float(calculate_niqe(sr_img, crop_border=scale, input_order='HWC', convert_to='y')))
        results[spec] = {'psnr': sum(psnrs) / len(psnrs), 'ssim': sum(ssims) / len(ssims), 'count': len(psnrs),
                         'per_image': dict(zip(names, psnrs))}
        if niqe:
            results[spec]['niqe'] = sum(niqes) / len(niqes)
    return results
