"""Cluster scores of labelled 2-D points: within-cluster (WD), between-cluster (BD) dispersion, CHI.

For points ``x_ik`` (point i of set k), set means ``x̄_k`` and the overall mean ``x̄``:

    WD  = Σ_k Σ_i ‖x_ik − x̄_k‖²
    BD  = Σ_k n_k ‖x̄_k − x̄‖²
    CHI = (BD / WD) · (N − K) / (K − 1)        (Calinski-Harabasz index)

High CHI: the sets form separate clusters, i.e. the layer encodes the degradation. Read as DDR-CHI
across models, lower means the network treats degradations alike (generalizes better).
"""
import numpy as np


def cluster_scores(points, labels):
    """WD, BD and CHI of ``points`` ``(N, d)`` grouped by ``labels`` ``(N,)`` (K >= 2 distinct values).

    CHI is 1.0 when WD is 0, as in ``sklearn.metrics.calinski_harabasz_score``, which it equals.

    Returns:
        dict: ``{'wd': float, 'bd': float, 'chi': float}``.
    """
    points = np.asarray(points, dtype=np.float64)
    labels = np.asarray(labels)
    groups = np.unique(labels)
    count, num_groups = len(points), len(groups)
    if num_groups < 2 or num_groups >= count:
        raise ValueError(f'cluster scores need 2 <= K < N, got K={num_groups}, N={count}')
    centre = points.mean(axis=0)
    wd = bd = 0.0
    for group in groups:
        members = points[labels == group]
        mean = members.mean(axis=0)
        wd += float(((members - mean) ** 2).sum())
        bd += len(members) * float(((mean - centre) ** 2).sum())
    chi = 1.0 if wd == 0.0 else bd / wd * (count - num_groups) / (num_groups - 1)
    return {'wd': wd, 'bd': bd, 'chi': chi}


def mean_std(values):
    """``{'mean': ..., 'std': ...}`` of a list of numbers (population std, 0 for a single value)."""
    values = np.asarray(values, dtype=np.float64)
    return {'mean': float(values.mean()), 'std': float(values.std())}


def score_runs(embeddings, labels):
    """Scores of each t-SNE run and their mean ± std.

    Args:
        embeddings (list[np.ndarray]): ``runs`` arrays ``(N, 2)``.
        labels (np.ndarray): ``(N,)`` set index of each point.

    Returns:
        dict: ``{'wd': {'mean', 'std'}, 'bd': {...}, 'chi': {...}, 'per_run': [{'wd', 'bd', 'chi'}, ...]}``.
    """
    per_run = [cluster_scores(points, labels) for points in embeddings]
    summary = {key: mean_std([run[key] for run in per_run]) for key in ('wd', 'bd', 'chi')}
    summary['per_run'] = per_run
    return summary


def format_number(value):
    """A number in a few characters: 123456 -> '123456', 12.345 -> '12.35', 0.00774 -> '0.00774'."""
    if abs(value) >= 100:
        return f'{value:.0f}'
    return f'{value:.2f}' if abs(value) >= 1 else f'{value:.3g}'


def format_score(score, aligned=False):
    """A score ``{'mean', 'std'}`` as text: the one formatter of logs, figure titles and reports.

    CHI spans 0.01 to 1e5, so there are no fixed decimals. By default each number gets a few characters
    (:func:`format_number`). ``aligned`` (report tables): mean and std share the decimals the mean's size asks
    for, 0 from 100 up, 1 from 10, 2 from 0.1, else 4.

    >>> format_score({'mean': 12.345, 'std': 0.5})
    '12.35 ± 0.5'
    >>> format_score({'mean': 12.345, 'std': 0.5}, aligned=True)
    '12.3 ± 0.5'
    >>> format_score({'mean': 3.0, 'std': 0.5}, aligned=True)
    '3.00 ± 0.50'
    """
    mean, std = score['mean'], score['std']
    if not aligned:
        return f'{format_number(mean)} ± {format_number(std)}'
    digits = 0 if abs(mean) >= 100 else 1 if abs(mean) >= 10 else 2 if abs(mean) >= 0.1 else 4
    return f'{mean:.{digits}f} ± {std:.{digits}f}'
