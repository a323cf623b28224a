"""Filter attribution: FAIG and the methods it is compared with (IG, |theta - theta_bar|, random).

Definitions (Xie et al., "Finding Discriminative Filters for Specific Degradations in Blind
Super-Resolution", NeurIPS 2021), with theta the target (blind) model and theta_bar the baseline (clean)
model of the same architecture:

* **FAIG.** Path gamma(a) = theta + a (theta_bar - theta), a_m = m / M for m = 0..M-1. For an input x with
  degradation d and ground truth y, L = ||F_gamma(a)(x) - y||^2 (sum). Per filter and per image,
  FAIG_d = sum over the kernel entries of |(theta_bar - theta) * (1/M) sum_m dL/dtheta at gamma(a_m)|,
  then averaged over the images. Every parameter (and floating buffer) moves along the path; only conv
  weights are attributed. The score for d1 against d2 is FAIG_d1 - FAIG_d2 (descending).
* **IG.** Integrated gradients of sum F_theta(x) with respect to the target's filters, the input moving
  from the clean LR x0 to the degraded LR x_d: per image, sum over the kernel entries of
  |(1/M) sum_m d sum F_theta(x0 + a_m (x_d - x0)) / dtheta|, averaged over the images. As in the paper's
  comparison, filters for d are ranked by IG_d itself (not by a difference).
* **absdiff.** sum |theta - theta_bar| / sum |theta_bar| per filter.
* **random.** A seeded random ranking.

The path loop is the cost: each step runs one forward and one backward for the whole batch (all images
and both degradations together). Per-image gradients come from ``torch.func.vmap(grad(...))``, which
needs the absolute value to be taken per image while still running one batched pass. The caller's
modules are never changed: parameters are swapped in with ``torch.func.functional_call``.
"""
import contextlib
import sys
import time
from typing import Optional

import torch
from torch.func import functional_call, grad, vmap
from tqdm import tqdm

from ddrsr.errors import DDRSRError, check_image_batch

from .data import degrade
from .filters import FilterIndex, check_same_architecture
from .ranking import Ranking

from ddrsr.defaults import FAIG_METHODS as METHODS  # noqa: E402


@contextlib.contextmanager
def evaluating(*models):
    """Put ``models`` in ``eval()`` for the block and give each its previous mode back."""
    modes = [model.training for model in models]
    for model in models:
        model.eval()
    try:
        yield
    finally:
        for model, mode in zip(models, modes):
            model.train(mode)


def model_device(model):
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device('cpu')


def infer_scale(model, size=8):
    """The model's SR factor: its ``scale`` attribute, or measured on a ``(1, 3, size, size)`` input."""
    scale = getattr(model, 'scale', None)
    if isinstance(scale, int) and scale > 0:
        return scale
    with torch.no_grad(), evaluating(model):
        out = model(torch.zeros(1, 3, size, size, device=model_device(model)))
    if out.shape[-1] % size:
        raise DDRSRError(f'{type(model).__name__} maps {size} px to {out.shape[-1]} px: not an integer SR scale')
    return out.shape[-1] // size


def _state(model, device):
    """``{name: detached tensor}`` of every parameter and buffer (what ``functional_call`` replaces)."""
    tensors = dict(model.named_parameters())
    tensors.update(model.named_buffers())
    return {name: tensor.detach().to(device) for name, tensor in tensors.items()}


def _per_sample_grads(model, fixed, weights, loss_fn, inputs, targets):
    """``{param_name: (B, *shape)}``: d loss_fn(F(x_b), y_b) / d weights, for each sample b, in one pass.

    ``fixed`` holds every other parameter/buffer; ``targets`` may be None (the loss ignores it then).
    """
    def loss_one(w, x, y):
        out = functional_call(model, (fixed, w), (x[None],))
        return loss_fn(out, None if y is None else y[None])

    in_dims = (None, 0, 0 if targets is not None else None)
    return vmap(grad(loss_one), in_dims=in_dims)(weights, inputs, targets)


def _squared_error(out, gt):
    return ((out - gt)**2).sum()


def _output_sum(out, _gt):
    return out.sum()


def _batches(count, batch_size):
    if batch_size < 1:
        raise DDRSRError(f'--batch must be at least 1, got {batch_size}')
    return [(start, min(start + batch_size, count)) for start in range(0, count, batch_size)]


def _check_steps(steps):
    if int(steps) < 1:
        raise DDRSRError(f'--steps must be at least 1, got {steps}')
    return int(steps)


def _path_attribution(model, filters, names, tensors, steps, point, loss_fn, factor, batch_size, progress, desc):
    """Shared loop of FAIG and IG: per image, |factor * mean gradient over the path|, summed per filter.

    Args:
        names (list[str]): the degradations; the input of each step stacks one batch per name, in order.
        tensors (dict): ``(N, ...)`` tensors, sliced into batches and handed to ``point``.
        point (callable): ``point(alpha, batch) -> (params, x (len(names) * B, 3, h, w), y or None)``, the
            model's parameters/buffers and the inputs (and targets) at path position ``alpha``.
        factor (dict | None): per conv weight, what the mean gradient is multiplied by (FAIG: theta_bar - theta).

    Returns:
        dict: ``{name: (F,) mean over the N images}``.
    """
    count = next(iter(tensors.values())).shape[0]
    conv_names = [layer.param for layer in filters.layers]
    totals = {name: torch.zeros(len(filters)) for name in names}
    batches = _batches(count, batch_size)
    bar = tqdm(total=len(batches) * steps, desc=desc, unit='step', file=sys.stderr, disable=not progress)
    for start, end in batches:
        batch = {key: value[start:end] for key, value in tensors.items()}
        accumulated = None
        for m in range(steps):
            params, x, y = point(m / steps, batch)
            weights = {name: params[name] for name in conv_names}
            fixed = {name: value for name, value in params.items() if name not in weights}
            grads = _per_sample_grads(model, fixed, weights, loss_fn, x, y)
            if accumulated is None:  # a copy: gradients of unused layers can be expanded zeros
                accumulated = {name: grads[name].clone(memory_format=torch.contiguous_format) for name in conv_names}
            else:
                for name in conv_names:
                    accumulated[name] += grads[name]
            bar.update(1)
        assert accumulated is not None  # steps >= 1: _check_steps ran in every caller
        rows = []
        for layer in filters.layers:
            mean_grad = accumulated[layer.param] / steps
            if factor is not None:
                mean_grad = mean_grad * factor[layer.param]
            rows.append(mean_grad.abs().reshape(mean_grad.shape[0], layer.count, -1).sum(-1))
        per_image = torch.cat(rows, dim=1).cpu()  # (len(names) * B, F)
        size = end - start
        for k, name in enumerate(names):
            totals[name] += per_image[k * size:(k + 1) * size].sum(0)
    bar.close()
    return {name: total / count for name, total in totals.items()}


def faig_scores(baseline, target, gt, lqs, steps=100, batch_size=10, progress=True):
    """FAIG_d per filter for each degradation d.

    Args:
        baseline, target (nn.Module): same architecture; not modified.
        gt (Tensor): ``(N, 3, H, W)`` ground truth in [0, 1].
        lqs (dict): ``{d: (N, 3, H / s, W / s)}``, the LR of ``gt`` under each degradation d.
        steps (int): M, points on the path.
        batch_size (int): images per batch (each batch runs every d at once).

    Returns:
        dict: ``{d: (F,) tensor}``, filters numbered as in :class:`FilterIndex` of ``target``.
    """
    filters = check_same_architecture(baseline, target)
    steps = _check_steps(steps)
    device = model_device(target)
    theta = _state(target, device)
    theta_bar = _state(baseline, device)
    delta = {name: theta_bar[name] - value for name, value in theta.items() if value.is_floating_point()}
    names = list(lqs)
    tensors = {'gt': gt.to(device), **{f'lq:{name}': lq.to(device) for name, lq in lqs.items()}}

    def point(alpha, batch):
        params = {name: value + alpha * delta[name] if name in delta else value for name, value in theta.items()}
        x = torch.cat([batch[f'lq:{name}'] for name in names])
        return params, x, batch['gt'].repeat(len(names), 1, 1, 1)

    with evaluating(target):
        return _path_attribution(target, filters, names, tensors, steps, point, _squared_error, delta, batch_size,
                                 progress, 'FAIG path')


def ig_scores(target, clean_lq, lqs, steps=100, batch_size=10, progress=True):
    """IG_d per filter of ``target`` for each degradation d (input path from ``clean_lq`` to ``lqs[d]``).

    Shapes: ``clean_lq`` and each ``lqs[d]`` are ``(N, 3, h, w)``. Returns ``{d: (F,) tensor}``.
    """
    filters = FilterIndex(target)
    steps = _check_steps(steps)
    device = model_device(target)
    theta = _state(target, device)
    names = list(lqs)
    tensors = {'clean': clean_lq.to(device), **{f'lq:{name}': lq.to(device) for name, lq in lqs.items()}}

    def point(alpha, batch):
        start = batch['clean']
        return theta, torch.cat([start + alpha * (batch[f'lq:{name}'] - start) for name in names]), None

    with evaluating(target):
        return _path_attribution(target, filters, names, tensors, steps, point, _output_sum, None, batch_size,
                                 progress, 'IG path')


def absdiff_scores(baseline, target):
    """``sum |theta - theta_bar| / sum |theta_bar|`` per filter: ``(F,)`` (inf where theta_bar is all zero)."""
    filters = check_same_architecture(baseline, target)
    device = model_device(target)
    theta, theta_bar = _state(target, device), _state(baseline, device)
    change = filters.reduce({layer.param: theta[layer.param] - theta_bar[layer.param] for layer in filters.layers},
                            lambda rows: rows.abs().sum(1))
    size = filters.reduce(theta_bar, lambda rows: rows.abs().sum(1))
    ratio = change / size
    return torch.where(change == 0, torch.zeros_like(ratio), ratio).cpu()


def random_scores(num_filters, seed=0):
    """A seeded random score per filter: ``(F,)``."""
    return torch.rand(num_filters, generator=torch.Generator().manual_seed(int(seed)))


def attribute(baseline: Optional[torch.nn.Module], target: torch.nn.Module, hr: torch.Tensor, deg: str = 'blur2',
              vs: str = 'noise20', method: str = 'faig', steps: int = 100, scale: Optional[int] = None,
              batch_size: int = 10, seed: int = 0, progress: bool = True) -> Ranking:
    """Rank every conv filter of ``target`` by how specific it is to degradation ``deg`` against ``vs``.

    Args:
        baseline, target (nn.Module): the clean model and the blind model fine-tuned from it (same
            architecture, refused with a DDRSRError otherwise). Neither is modified.
        hr (Tensor): float ``(N, 3, H, W)`` HR crops in [0, 1]; H and W multiples of the scale (DDRSRError
            otherwise). The LR inputs are made from them with the named specs (``ddrsr.data.degradations``),
            seed ``seed``.
        deg, vs (str): named specs, e.g. ``blur2`` and ``noise20``.
        method (str): ``faig``, ``ig``, ``absdiff`` or ``random``.
        steps (int): M, points on the path (FAIG, IG).
        scale (int, optional): SR factor; read from ``target.scale`` or measured when not given.
        batch_size (int): images per forward/backward.

    Returns:
        Ranking: ``score`` ranks filters for ``deg``, ``score_vs`` for ``vs``; ``settings`` records the
        inputs and the runtime in seconds.
    
    >>> from ddrsr.archs import SRResNet
    >>> base, target = SRResNet(num_feat=4, num_block=1), SRResNet(num_feat=4, num_block=1)
    >>> ranking = attribute(base, target, torch.rand(2, 3, 16, 16), method='absdiff', progress=False)
    >>> ranking.score.shape  # one score per (output, input) channel pair of every conv layer
    torch.Size([200])
    """
    if method not in METHODS:
        raise DDRSRError(f'unknown attribution method {method!r}; choose one of {", ".join(METHODS)}')
    if deg == vs:
        raise DDRSRError(f'--deg and --vs must differ, both are {deg!r}')
    filters = check_same_architecture(baseline, target)
    scale = scale or infer_scale(target)
    check_image_batch(hr, 'attribute: hr', multiple_of=scale)
    began = time.perf_counter()
    hr = hr.to(model_device(target))
    if method == 'faig':
        lqs = {deg: degrade(hr, deg, scale, seed), vs: degrade(hr, vs, scale, seed)}
        per_deg = faig_scores(baseline, target, hr, lqs, steps, batch_size, progress)
        score = per_deg[deg] - per_deg[vs]
        score_vs = -score
    elif method == 'ig':
        lqs = {deg: degrade(hr, deg, scale, seed), vs: degrade(hr, vs, scale, seed)}
        per_deg = ig_scores(target, degrade(hr, 'clean', scale, seed), lqs, steps, batch_size, progress)
        score, score_vs = per_deg[deg], per_deg[vs]
    elif method == 'absdiff':
        score = absdiff_scores(baseline, target)
        score_vs = score.clone()
    else:
        score = random_scores(len(filters), seed)
        score_vs = score.clone()
    settings = {'steps': steps if method in ('faig', 'ig') else None, 'images': int(hr.shape[0]),
                'hr_size': list(hr.shape[-2:]), 'scale': scale, 'seed': seed, 'batch_size': batch_size,
                'device': str(hr.device), 'threads': torch.get_num_threads(),
                'runtime_s': round(time.perf_counter() - began, 3)}
    return Ranking(method, deg, vs, filters.signature(), score.float(), score_vs.float(), settings)
