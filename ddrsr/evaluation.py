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
from basicsr.utils.color_util import bgr2ycbcr
from tqdm import tqdm

from ddrsr.data.spec_paired_dataset import SpecPairedDataset
from ddrsr.errors import DDRSRError


def psnr_y(sr, gt, border):
    """PSNR on Y of 8-bit images, ``border`` pixels cropped, per image: ``(N, 3, H, W)`` x2 -> list[float].

    The one PSNR of ddrsr (BasicSR's ``calculate_psnr`` on ``tensor2img`` images, as :func:`evaluate` computes it).

    >>> psnr_y(torch.zeros(1, 3, 8, 8), torch.full((1, 3, 8, 8), 1 / 255), border=0)[0] > 40
    True
    """
    return [calculate_psnr(tensor2img([s]), tensor2img([g]), crop_border=border, test_y_channel=True)
            for s, g in zip(sr.float().cpu().clamp(0, 1), gt.float().cpu())]


def bicubic_upscaler(scale):
    """An "upscaler" ``(B, 3, h, w) -> (B, 3, h*scale, w*scale)`` that is plain bicubic interpolation."""
    def upscale(lq):
        return F.interpolate(lq, scale_factor=scale, mode='bicubic', align_corners=False).clamp(0, 1)

    return upscale


JPEG_BLOCK = 8  # LR pixels per JPEG block side


def blockiness_terms(sr_y, scale, block=JPEG_BLOCK):
    """``(sum at block edges, count, sum at other edges, count)`` of ``|dY|`` across pixel edges of an x``scale`` output.

    ``sr_y`` is an ``(H, W)`` array of the output's luma. An LR JPEG block edge is an HR boundary at a multiple of
    ``block * scale`` (32 at x4); the other LR pixel edges are the other multiples of ``scale``: the same
    interpolation phase, so an output that ignores the JPEG grid scores 1. Rows and columns are pooled.
    """
    import numpy as np

    sr_y = np.asarray(sr_y, dtype=np.float64)
    sums = [0.0, 0, 0.0, 0]
    for diffs in (np.abs(np.diff(sr_y, axis=0)), np.abs(np.diff(sr_y, axis=1)).T):
        # diffs[p - 1] is the step between rows p - 1 and p
        positions = np.arange(scale, diffs.shape[0] + 1, scale)
        edges = positions[positions % (block * scale) == 0]
        others = positions[positions % (block * scale) != 0]
        sums[0] += float(diffs[edges - 1].sum())
        sums[1] += int(diffs[edges - 1].size)
        sums[2] += float(diffs[others - 1].sum())
        sums[3] += int(diffs[others - 1].size)
    return tuple(sums)


def blockiness(terms):
    """Pooled blockiness of a set from its :func:`blockiness_terms`: mean |dY| at JPEG block edges over the mean at the
    other LR pixel edges (HR photos score ~1; visible 8x8 blocks, above 1). None when it is undefined.

    >>> import numpy as np
    >>> ramp = np.arange(256) * 0.1 + np.repeat(np.arange(8), 32)  # a ramp, plus a step at every 32nd column
    >>> round(blockiness([blockiness_terms(np.tile(ramp, (256, 1)), 4)]), 2)  # columns 11, rows 0/0: pooled
    11.0
    """
    edge_sum, edge_count, other_sum, other_count = (sum(t[i] for t in terms) for i in range(4))
    if not edge_count or not other_count or not other_sum:
        return None  # crops smaller than one JPEG block (x scale), or flat: undefined
    return (edge_sum / edge_count) / (other_sum / other_count)


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
        dict: ``{spec: {'psnr': float, 'ssim': float, 'blockiness': float, 'count': int, 'per_image': {file name:
        PSNR}}}`` (``blockiness``: :func:`blockiness`, pooled over the crops), plus
        ``'niqe'`` if asked. The per-image PSNRs show when one image carries a mean (a few crops, one of them
        nearly flat, where every model's error is large in dB).
    """
    results = {}
    for spec in specs:
        dataset = SpecPairedDataset({'dataroot_gt': hr_dir, 'meta_info': meta_info, 'spec': spec, 'scale': scale,
                                     'crop_size': crop_size, 'seed': seed})
        psnrs, ssims, niqes, names, blocks = [], [], [], [], []
        for index in tqdm(range(len(dataset)), desc=f'evaluate {spec}', unit='img', disable=not progress):
            item = dataset[index]
            sr = upscale(item['lq'][None].to(device)).float().cpu().clamp(0, 1)
            sr_img, gt_img = tensor2img([sr[0]]), tensor2img([item['gt']])
            psnrs.append(float(calculate_psnr(sr_img, gt_img, crop_border=scale, test_y_channel=True)))
            names.append(os.path.basename(item['gt_path']))
            ssims.append(calculate_ssim(sr_img, gt_img, crop_border=scale, test_y_channel=True))
            blocks.append(blockiness_terms(bgr2ycbcr(sr_img, y_only=True), scale))
            if niqe:
                _check_niqe_size(sr_img.shape[:2], scale, item['gt_path'])
                niqes.append(float(calculate_niqe(sr_img, crop_border=scale, input_order='HWC', convert_to='y')))
        results[spec] = {'psnr': sum(psnrs) / len(psnrs), 'ssim': sum(ssims) / len(ssims),
                         'blockiness': blockiness(blocks), 'count': len(psnrs),
                         'per_image': dict(zip(names, psnrs))}
        if niqe:
            results[spec]['niqe'] = sum(niqes) / len(niqes)
    return results
