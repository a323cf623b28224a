"""Degradation prediction from the activations of the discovered filters, with no degradation labels.

**The rule.** A ranking of ``deg`` against ``vs`` (say ``blur2`` against ``noise20``) gives two filter
sets: the top-k % for ``deg`` and the top-k % for ``vs``. The *activation* of filter ``weight[o, i]`` on
an LR input x, in the target model, is the mean absolute value over space of that kernel's own response
``conv2d(x_i, weight[o, i])`` to channel ``i`` of its layer's input, taken relative to the layer:
``r_f(x) = log a_f(x) - mean_o log mean |y_o(x) - bias_o|`` (y: the layer's output), so that the amount
of texture in the picture, which scales a whole layer alike, cancels. For a set S of filters, the
score of an input is

    s_S(x) = mean over f in S of [r_f(x) - mean over clean references c of r_f(c)],

so that clean images score about 0. Fitting sees no degradation labels:

1. An unlabelled pool of LR images (the fit images under ``clean``, ``deg``, ``vs`` and both, pooled
   and shuffled, never told apart) and the clean references (the same fit images, bicubic only: what
   the baseline model was trained on).
2. For each set, the pool's scores are split in two by exact 1-D 2-means; the threshold is halfway
   between the two cluster means.
3. The side of the threshold where the clean references' mean score falls means "absent", the other
   side "present".

An unseen input then gets ``deg`` yes/no and ``vs`` yes/no: four classes (``clean``, ``deg``, ``vs``,
both). Accuracy is measured on held-out images built with the named specs.
"""
import sys

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ddrsr.errors import DDRSRError
from ddrsr.utils.markdown import markdown_table

from .attribution import evaluating, infer_scale, model_device
from .data import combine_specs, degrade
from .filters import FilterIndex

_EPS = 1e-8  # keeps log finite for filters whose response is exactly zero (e.g. after a ReLU of zeros)


def _responses(module, x, o, i, chunk):
    """Mean |conv2d(x_i, weight[o, i])| over space for each ``(o, i)`` pair: ``(B, K)``, ``chunk`` at a time."""
    in_per_group = module.in_channels // module.groups
    out_per_group = module.out_channels // module.groups
    channel = (o // out_per_group) * in_per_group + i
    padding = module.padding
    if module.padding_mode != 'zeros':  # as nn.Conv2d does: pad first, then convolve unpadded
        x = F.pad(x, module._reversed_padding_repeated_twice, mode=module.padding_mode)
        padding = 0
    parts = []
    for start in range(0, len(o), chunk):
        part = slice(start, start + chunk)
        kernels = module.weight[o[part], i[part]][:, None]  # (k, 1, kh, kw): one kernel per gathered channel
        response = F.conv2d(x[:, channel[part]], kernels, None, module.stride, padding, module.dilation,
                            groups=kernels.shape[0])
        parts.append(response.abs().mean((2, 3)).float())
    return torch.cat(parts, dim=1)


@torch.no_grad()
def filter_activations(model, indices, lq, batch_size=16, chunk=256, relative=False, progress=False):
    """Activation of each chosen filter on each input: ``(N, K)``, columns in the order of ``indices``.

    The activation of filter ``weight[o, i]`` is the mean |response| over space of ``conv2d(x_i, weight[o, i])``,
    with ``x_i`` channel i of its layer's input. With ``relative=True`` it is ``log a_f(x)`` minus the mean
    over the layer's output channels o of ``log mean |y_o(x) - bias_o|``: the filter's response relative to
    its layer's, which cancels how much texture the input has (that scales the whole layer alike).

    Args:
        model (nn.Module): any module with conv layers; it runs once per batch with forward pre-hooks.
        indices (Tensor): ``(K,)`` flat filter indices (see :class:`FilterIndex`).
        lq (Tensor): ``(N, 3, h, w)`` inputs of the model.

    A filter whose layer never runs (e.g. an unused tail) gets NaN.
    """
    filters = FilterIndex(model)
    indices = torch.as_tensor(indices, dtype=torch.long)
    position, o_all, i_all = filters.locate(indices)
    modules = dict(model.named_modules())
    device = model_device(model)
    out = torch.full((len(lq), len(indices)), float('nan'))
    rows = [0, 0]  # the current batch's rows of ``out``

    def make_hook(columns, o, i):
        def pre_hook(module, args):
            values = _responses(module, args[0], o, i, chunk)
            out[rows[0]:rows[1], columns] = values.cpu() if not relative else torch.log(values + _EPS).cpu()

        def hook(module, _args, output):
            # log of the layer's own response per output channel (bias removed), averaged over channels
            response = output if module.bias is None else output - module.bias[:, None, None]
            level = torch.log(response.abs().mean((2, 3)).float() + _EPS).mean(1, keepdim=True)
            out[rows[0]:rows[1], columns] -= level.cpu()
        return pre_hook, hook

    handles = []
    for p in position.unique().tolist():
        columns = torch.nonzero(position == p).flatten()
        module = modules[filters.layers[p].name]
        pre_hook, hook = make_hook(columns, o_all[columns].to(device), i_all[columns].to(device))
        handles.append(module.register_forward_pre_hook(pre_hook))
        if relative:
            handles.append(module.register_forward_hook(hook))
    try:
        with evaluating(model):
            for start in tqdm(range(0, len(lq), batch_size), desc='filter activations', unit='batch',
                              file=sys.stderr, disable=not progress):
                rows[0], rows[1] = start, min(start + batch_size, len(lq))
                model(lq[start:start + batch_size].to(device))
    finally:
        for handle in handles:
            handle.remove()
    return out


def two_means_threshold(values):
    """Exact 1-D 2-means: ``(threshold, low_mean, high_mean)``, the threshold halfway between the means."""
    values = np.sort(np.asarray(values, dtype=np.float64))
    if len(values) < 2 or values[0] == values[-1]:
        raise DDRSRError('the fit set needs at least two different scores to split; give more --fit images')
    prefix, prefix_sq = np.cumsum(values), np.cumsum(values**2)
    total, total_sq, n = prefix[-1], prefix_sq[-1], len(values)
    best = None
    for k in range(1, n):  # left cluster = values[:k]
        if values[k - 1] == values[k]:
            continue
        left = prefix_sq[k - 1] - prefix[k - 1]**2 / k
        right = (total_sq - prefix_sq[k - 1]) - (total - prefix[k - 1])**2 / (n - k)
        if best is None or left + right < best[0]:
            best = (left + right, prefix[k - 1] / k, (total - prefix[k - 1]) / (n - k))
    _, low, high = best
    return (low + high) / 2, low, high


class DegradationPredictor:
    """Tells whether an input carries ``ranking.deg`` and ``ranking.vs`` (the module docstring gives the rule).

    Args:
        model (nn.Module): the target (blind) model the ranking was made on.
        ranking (Ranking): filters for ``deg`` (top ``percent`` %) and for ``vs`` (top ``percent`` % of ``vs``).
        percent (float): k, in % of all filters.
    """

    def __init__(self, model, ranking, percent=1.0, batch_size=16):
        ranking.check_model(FilterIndex(model))
        self.model, self.ranking, self.batch_size = model, ranking, batch_size
        self.sets = {'deg': ranking.top(percent, 'deg'), 'vs': ranking.top(percent, 'vs')}
        if min(len(s) for s in self.sets.values()) == 0:
            raise DDRSRError(f'{percent} % of {ranking.num_filters} filters is no filter; raise --percent')
        self.percent = percent
        self.reference = None

    def _log_activations(self, lq):
        every = torch.cat(list(self.sets.values()))
        return filter_activations(self.model, every, lq, self.batch_size, relative=True)

    def scores(self, lq):
        """``(N, 2)``: the score of each input for the ``deg`` filters and for the ``vs`` filters."""
        if self.reference is None:
            raise DDRSRError('call fit() before scores() or predict()')
        relative = self._log_activations(lq) - self.reference
        split = len(self.sets['deg'])
        return torch.stack([relative[:, :split].nanmean(1), relative[:, split:].nanmean(1)], dim=1)

    def fit(self, unlabelled_lq, clean_lq):
        """Fit the clean reference, thresholds and orientation. Shapes: ``(N, 3, h, w)`` and ``(M, 3, h, w)``."""
        self.reference = self._log_activations(clean_lq).nanmean(0)
        pool, clean = self.scores(unlabelled_lq), self.scores(clean_lq).mean(0)
        self.thresholds, self.present_above, self.cluster_means = [], [], []
        for column in range(2):
            threshold, low, high = two_means_threshold(pool[:, column].numpy())
            self.thresholds.append(threshold)
            self.present_above.append(bool(clean[column] < threshold))
            self.cluster_means.append((low, high))
        return self

    def predict(self, lq):
        """``(N, 2)`` bool: ``deg`` present, ``vs`` present."""
        scores = self.scores(lq)
        columns = []
        for column in range(2):
            above = scores[:, column] > self.thresholds[column]
            columns.append(above if self.present_above[column] else ~above)
        return torch.stack(columns, dim=1)

    def classes(self):
        """Class names in the order of :meth:`labels`' indices: none, deg, vs, both."""
        return ['clean', self.ranking.deg, self.ranking.vs, combine_specs(self.ranking.deg, self.ranking.vs)]

    def labels(self, lq):
        """Class index per input (0 clean, 1 deg, 2 vs, 3 both): ``(N,)`` long."""
        present = self.predict(lq).long()
        return present[:, 0] + 2 * present[:, 1]

    def describe(self):
        return {'percent': self.percent, 'filters': {k: len(v) for k, v in self.sets.items()},
                'thresholds': [float(t) for t in self.thresholds],
                'present_above': self.present_above, 'cluster_means': [list(map(float, m)) for m in self.cluster_means]}


def predict(model, ranking, lq, fit_lq, clean_lq, percent=1.0, batch_size=16):
    """Predict the degradation of each ``lq`` from the activations of the ranking's top filters.

    Args:
        model (nn.Module): the target model; not modified.
        ranking (Ranking): made on ``model``'s architecture.
        lq (Tensor): ``(N, 3, h, w)`` unseen inputs.
        fit_lq (Tensor): unlabelled inputs for the thresholds (any mix of degradations).
        clean_lq (Tensor): clean references (bicubic LR).

    Returns:
        list[str]: one class name per input: ``clean``, ``ranking.deg``, ``ranking.vs`` or both combined.
    """
    predictor = DegradationPredictor(model, ranking, percent, batch_size).fit(fit_lq, clean_lq)
    names = predictor.classes()
    return [names[k] for k in predictor.labels(lq).tolist()]


def prediction_accuracy(model, ranking, fit_hr, test_hr, percent=1.0, scale=None, seed=0, batch_size=16):
    """Fit on ``fit_hr`` (labels dropped), test on ``test_hr`` under ``clean``, ``deg``, ``vs`` and both.

    Shapes: ``fit_hr`` ``(N, 3, H, W)``, ``test_hr`` ``(M, 3, H, W)``. Returns a dict with the accuracy,
    the accuracy per class and per degradation (yes/no), the confusion matrix (rows: truth) and the fit.
    """
    scale = scale or infer_scale(model)
    predictor = DegradationPredictor(model, ranking, percent, batch_size)
    classes = predictor.classes()
    fit_sets = [degrade(fit_hr, spec, scale, seed) for spec in classes]
    unlabelled = torch.cat(fit_sets)[torch.randperm(len(fit_hr) * len(classes),
                                                     generator=torch.Generator().manual_seed(seed))]
    predictor.fit(unlabelled, fit_sets[0])
    confusion = np.zeros((4, 4), dtype=int)
    correct_parts = np.zeros(2)
    for truth, spec in enumerate(classes):
        # Another seed than the fit set's: the held-out noise is new too.
        labels = predictor.labels(degrade(test_hr, spec, scale, seed + 1)).numpy()
        for label in labels:
            confusion[truth, label] += 1
            correct_parts += [(label & 1) == (truth & 1), (label >> 1) == (truth >> 1)]
    total = int(confusion.sum())
    return {'method': ranking.method, 'classes': classes, 'accuracy': float(np.trace(confusion) / total),
            'per_class': {name: float(confusion[k, k] / confusion[k].sum()) for k, name in enumerate(classes)},
            'per_degradation': {ranking.deg: float(correct_parts[0] / total),
                                ranking.vs: float(correct_parts[1] / total)},
            'confusion': confusion.tolist(), 'test_images': int(len(test_hr)), 'fit_images': int(len(fit_hr)),
            'chance': 0.25, 'fit': predictor.describe()}


def prediction_markdown(results):
    """Accuracy table (one row per ranking) and each confusion matrix, as Markdown."""
    if not results:
        return ''
    classes = results[0]['classes']
    degs = list(results[0]['per_degradation'])
    lines = markdown_table(
        ['method', 'accuracy (4 classes)', *classes, *(f'{d} yes/no' for d in degs)],
        [[r['method'], f'{r["accuracy"]:.3f}', *(f'{r["per_class"][c]:.2f}' for c in classes),
          *(f'{r["per_degradation"][d]:.2f}' for d in degs)] for r in results])
    for r in results:
        lines += ['', f'Confusion matrix, {r["method"]} (rows: truth, columns: prediction):', '']
        lines += markdown_table(['truth \\ predicted', *classes], [[c, *row] for c, row in zip(classes, r['confusion'])])
    return '\n'.join(lines) + '\n'

