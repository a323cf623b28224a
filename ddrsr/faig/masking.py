"""Masking: copy the baseline's filters into the target at the top-p% locations, and measure PSNR.

If a ranking really found the filters that remove blur, putting the clean model's versions of only
those filters back into the blind model should hurt blurry inputs far more than noisy ones (and the
reverse for noise filters). Only conv weights are copied (biases and other parameters stay the
target's), so masking 100 % gives the baseline's filters, and the baseline itself wherever the two
models differ only in conv weights.
"""
import copy
import sys
from typing import TYPE_CHECKING, Any, Dict, Optional, Sequence, Union

import torch
from tqdm import tqdm

from ddrsr.errors import DDRSRError, check_image_batch
from ddrsr.evaluation import psnr_y  # noqa: F401  (also importable from here, where it used to live)
from ddrsr.utils.markdown import markdown_table

from .attribution import evaluating, infer_scale, model_device
from .data import combine_specs, degrade
from .filters import FilterIndex, check_same_architecture

if TYPE_CHECKING:
    from .ranking import Ranking

from ddrsr.defaults import FAIG_PERCENTS as PERCENTS  # noqa: E402


def mask_filters(baseline: torch.nn.Module, target: torch.nn.Module,
                 indices: Union[torch.Tensor, Sequence[int]]) -> torch.nn.Module:
    """A copy of ``target`` whose filters at flat ``indices`` are the baseline's. Neither input changes.

    Args:
        baseline, target (nn.Module): same architecture.
        indices (Tensor | list[int]): flat filter indices (see :class:`FilterIndex`).

    Returns:
        nn.Module: the masked copy, in the target's mode and on its device.
    """
    filters = check_same_architecture(baseline, target)
    masked = copy.deepcopy(target)
    with torch.no_grad():
        for layer_name, (o, i) in filters.split(indices).items():
            param = filters.layer(layer_name).param
            source = baseline.get_parameter(param)
            weight = masked.get_parameter(param)
            weight[o, i] = source[o, i].to(weight)
    return masked


def mask(baseline: torch.nn.Module, target: torch.nn.Module, ranking: 'Ranking', percent: float,
         which: str = 'deg') -> torch.nn.Module:
    """Copy of ``target`` with the baseline's filters at the ranking's top ``percent`` % for ``deg`` or ``vs``.

    Args:
        ranking (Ranking): from :func:`ddrsr.faig.attribute` (or ``Ranking.load``) on this architecture.
        percent (float): 0..100; 0 returns an unchanged copy, 100 copies every filter.
        which (str): ``'deg'`` masks the filters specific to ``ranking.deg``, ``'vs'`` those of ``ranking.vs``.
    
    >>> import torch
    >>> from ddrsr.archs import SRResNet
    >>> from ddrsr.faig import attribute
    >>> base, target = SRResNet(num_feat=4, num_block=1), SRResNet(num_feat=4, num_block=1)
    >>> ranking = attribute(base, target, torch.rand(2, 3, 16, 16), method='absdiff', progress=False)
    >>> masked = mask(base, target, ranking, 50)
    >>> masked(torch.rand(1, 3, 8, 8)).shape  # the same architecture: (B, 3, 4H, 4W)
    torch.Size([1, 3, 32, 32])
    """
    ranking.check_model(FilterIndex(target))
    return mask_filters(baseline, target, ranking.top(percent, which))


@torch.no_grad()
def evaluate_psnr(model, hr, lqs, scale, batch_size=10):
    """Mean PSNR (Y, border ``scale``) of ``model`` on each ``lqs[spec]`` against ``hr``: ``{spec: float}``."""
    device = model_device(model)
    results = {}
    with evaluating(model):
        for spec, lq in lqs.items():
            values = []
            for start in range(0, len(hr), batch_size):
                sr = model(lq[start:start + batch_size].to(device))
                values += psnr_y(sr, hr[start:start + batch_size], scale)
            results[spec] = sum(values) / len(values)
    return results


def masking_table(baseline: torch.nn.Module, target: torch.nn.Module, rankings: Sequence['Ranking'],
                  hr: torch.Tensor, specs: Optional[Sequence[str]] = None, percents: Sequence[float] = PERCENTS,
                  scale: Optional[int] = None, seed: int = 0, batch_size: int = 10,
                  progress: bool = True) -> Dict[str, Any]:
    """PSNR of the target with each ranking's top-p% filters (for ``deg`` and for ``vs``) masked.

    Args:
        baseline, target (nn.Module): the clean model and the blind model (same architecture).
        rankings (list[Ranking]): e.g. one per method, all for the same architecture.
        hr (Tensor): float ``(N, 3, H, W)`` HR crops, H and W multiples of the scale (DDRSRError otherwise); the
            LR inputs are made with each spec (seed ``seed``).
        specs (list[str], optional): default: the ranking's ``deg``, ``vs`` and both combined
            (``blur2``, ``noise20``, ``blur2_noise20``).
        percents (list[float]): p values, in % of all filters.

    Returns:
        dict: ``reference`` (PSNR of target and baseline per spec) and ``rows``, one per ranking, masked
        set (``filters_for`` = the spec whose filters were masked) and p, with ``psnr`` and ``drop``
        (target PSNR minus masked PSNR) per spec.
    """
    if not rankings:
        raise DDRSRError('give at least one ranking to mask with (ranking.json from `ddrsr faig`)')
    filters = check_same_architecture(baseline, target)
    for ranking in rankings:
        ranking.check_model(filters)
    scale = scale or infer_scale(target)
    check_image_batch(hr, 'masking_table: hr', multiple_of=scale)
    if specs is None:
        first = rankings[0]
        specs = [first.deg, first.vs, combine_specs(first.deg, first.vs)]
    lqs = {spec: degrade(hr, spec, scale, seed) for spec in specs}
    reference = {'target': evaluate_psnr(target, hr, lqs, scale, batch_size),
                 'baseline': evaluate_psnr(baseline, hr, lqs, scale, batch_size)}
    rows = []
    jobs = [(ranking, which, percent) for ranking in rankings for which in ('deg', 'vs') for percent in percents]
    for ranking, which, percent in tqdm(jobs, desc='masking', unit='model', file=sys.stderr, disable=not progress):
        masked = mask(baseline, target, ranking, percent, which)
        psnr = evaluate_psnr(masked, hr, lqs, scale, batch_size)
        rows.append({'method': ranking.method, 'ranking_deg': ranking.deg, 'ranking_vs': ranking.vs,
                     'filters_for': ranking.spec(which), 'percent': percent,
                     'count': int(len(ranking.top(percent, which))), 'psnr': psnr,
                     'drop': {spec: reference['target'][spec] - value for spec, value in psnr.items()}})
    return {'specs': list(specs), 'percents': list(percents), 'num_filters': len(filters), 'images': int(len(hr)),
            'hr_size': list(hr.shape[-2:]), 'scale': scale, 'seed': seed, 'reference': reference, 'rows': rows}


def masking_markdown(table):
    """The masking table as Markdown: PSNR (drop) per spec, one row per method, masked set and p."""
    specs = table['specs']
    rows = [[f'{name} (unmasked)', 'none', '0 %', *(f'{values[s]:.2f}' for s in specs)]
            for name, values in table['reference'].items()]
    rows += [[row['method'], row['filters_for'], f'{row["percent"]:g} %',
              *(f'{row["psnr"][s]:.2f} ({row["drop"][s]:+.2f})' for s in specs)] for row in table['rows']]
    header = ['method', 'masked filters', 'p', *(f'{spec} PSNR (drop)' for spec in specs)]
    return '\n'.join(markdown_table(header, rows)) + '\n'
