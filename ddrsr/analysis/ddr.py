"""DDR-CHI of one layer of a network, and of several networks side by side (generalization).

``sets -> features at a layer -> PCA -> t-SNE x runs -> WD / BD / CHI (mean ± std)``. Works for any
``nn.Module`` whose forward takes ``(B, 3, p, p)``, at any layer name of ``named_modules()``.
"""
from dataclasses import dataclass, field
from typing import Mapping, Optional, Union

import numpy as np
import torch
from torch import nn

from ddrsr.errors import DDRSRError

from .features import extract_set_features
from .plots import plot_embedding_panels
from .projection import tsne_runs
from .scores import format_number, format_score, score_runs


@dataclass
class LayerAnalysis:
    """The outcome of :func:`analyze_layer`.

    Attributes:
        layer (str), dim (int): layer name and feature size ``C * h * w`` per patch.
        set_names (list[str]): the sets, in label order.
        scores (dict): ``{'wd'|'bd'|'chi': {'mean', 'std'}, 'per_run': [...]}``.
        embeddings (list[np.ndarray]): ``runs`` t-SNE embeddings ``(K * N, 2)``.
        labels (np.ndarray): ``(K * N,)`` set index of each point.
        perplexity (float): the t-SNE perplexity used.
    """
    layer: str
    dim: int
    set_names: list
    scores: dict
    embeddings: list = field(repr=False)
    labels: np.ndarray = field(repr=False)
    perplexity: float = 30.0

    def summary(self):
        """A JSON-ready row: layer, dim, wd, bd, chi (each ``{'mean', 'std'}``) and the per-run CHI."""
        return {'layer': self.layer, 'dim': self.dim, 'wd': self.scores['wd'], 'bd': self.scores['bd'],
                'chi': self.scores['chi'], 'chi_per_run': [run['chi'] for run in self.scores['per_run']]}

    def describe(self):
        """One human-readable line."""
        return (f'{self.layer} (dim {self.dim}): DDR-CHI {format_score(self.scores["chi"])}, '
                f'WD {format_score(self.scores["wd"])}, BD {format_score(self.scores["bd"])}')


def analyze_layer(model: nn.Module, layer: str, sets: Mapping[str, torch.Tensor], runs: int = 5,
                  perplexity: Optional[float] = None, device: Union[str, torch.device, None] = None,
                  progress: bool = True) -> 'LayerAnalysis':
    """How clearly the features at ``layer`` separate the sets (their degradations).

    Args:
        model (nn.Module): the network (its forward takes ``(B, 3, p, p)``).
        layer (str): a name of ``model.named_modules()``.
        sets (dict): ``{name: (N, 3, p, p)}`` float tensors, at least two, all the same shape
            (see :func:`~ddrsr.analysis.features.hr_patch_sets`); a DDRSRError names the set that is not.
        runs (int): t-SNE runs (seeds ``0..runs-1``); scores are mean ± std over them.
        perplexity (float, optional): t-SNE perplexity; default 30, clipped below ``K * N``.

    Returns:
        LayerAnalysis

    >>> import torch
    >>> from ddrsr.archs import SRResNet
    >>> sets = {'clean': torch.rand(6, 3, 8, 8), 'noisy': torch.rand(6, 3, 8, 8)}  # (N, 3, p, p) each
    >>> analysis = analyze_layer(SRResNet(num_feat=4, num_block=1), 'body.0', sets, runs=1, progress=False)
    >>> analysis.dim, sorted(analysis.scores)  # 4 channels x 8 x 8 per patch
    (256, ['bd', 'chi', 'per_run', 'wd'])
    """
    features, labels = extract_set_features(model, layer, sets, device=device, progress=progress)
    embeddings, perplexity = tsne_runs(features, runs, perplexity, progress=progress, desc=f't-SNE {layer}')
    return LayerAnalysis(layer=layer, dim=int(features.shape[1]), set_names=list(sets),
                         scores=score_runs(embeddings, labels), embeddings=embeddings, labels=labels,
                         perplexity=perplexity)


def plot_layer_analysis(analysis, path, name=''):
    """One figure for one layer: a panel per t-SNE run, CHI mean ± std in the title. Returns ``path``."""
    panels = [(points, f'run {i}: CHI {format_number(run["chi"])}')
              for i, (points, run) in enumerate(zip(analysis.embeddings, analysis.scores['per_run']))]
    prefix = f'{name} · ' if name else ''
    title = f'{prefix}{analysis.layer}: DDR-CHI {format_score(analysis.scores["chi"])} ({len(panels)} t-SNE runs)'
    return plot_embedding_panels(panels, analysis.labels, analysis.set_names, title, path)


def plot_generalization(analyses, path):
    """One figure, one panel per model (its first t-SNE run), each titled with its CHI. Returns ``path``.

    Args:
        analyses (dict): ``{model_name: LayerAnalysis}``, all on the same sets.
    """
    first = next(iter(analyses.values()))
    panels = [(a.embeddings[0], f'{name} · {a.layer}\nDDR-CHI {format_score(a.scores["chi"])}')
              for name, a in analyses.items()]
    title = 'DDR-CHI per model (lower = degradations treated alike = generalizes better)'
    return plot_embedding_panels(panels, first.labels, first.set_names, title, path)


def default_layer(model):
    """A deep layer to read when none is named: the last block of ``body``.

    Looks for a top-level ``body`` container (SRResNet, RRDBNet, EDSR, ...), then the shallowest
    ``*.body`` one. DDRSRError asking for ``--layer`` when there is none.
    """
    containers = [(name, module) for name, module in model.named_modules()
                  if (name == 'body' or name.endswith('.body')) and isinstance(module, (nn.Sequential, nn.ModuleList))
                  and len(module) > 0]
    if not containers:
        names = [n for n, _ in model.named_modules() if n]
        sample = ', '.join(names[-12:])
        raise DDRSRError(f'{type(model).__name__} has no `body` block list to pick a default layer from; '
                         f'pass --layer NAME (its last layers: {sample})')
    name, module = min(containers, key=lambda item: item[0].count('.'))
    return f'{name}.{len(module) - 1}'
