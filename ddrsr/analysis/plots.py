"""Figures of the DDR analysis: t-SNE scatters (one panel per run or model) and CHI/PSNR over training.

Figures are drawn on matplotlib's Agg canvas directly (``Figure`` + ``FigureCanvasAgg``), not through
pyplot, so no global backend is switched and nothing needs a display.
"""
import math
import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ddrsr.utils.figures import save_figure  # noqa: F401  (also importable from here, where it used to live)

MAX_COLUMNS = 5


def plot_embedding_panels(panels, labels, set_names, title, path):
    """Scatter plots of 2-D embeddings, one colour per set, one shared legend.

    Args:
        panels (list[tuple[np.ndarray, str]]): ``(points (N, 2), panel title)`` per panel (t-SNE run or model).
        labels (np.ndarray): ``(N,)`` set index of each point, into ``set_names``.
        set_names (list[str]): legend entries, in label order.
        title (str): figure title (carries the CHI, mean ± std).
        path (str): PNG to write.

    Returns:
        str: ``path``.
    """
    labels = np.asarray(labels)
    columns = min(MAX_COLUMNS, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure = Figure(figsize=(3.2 * columns, 3.2 * rows + 0.9))
    colours = [f'C{i % 10}' for i in range(len(set_names))]
    handles = []
    for index, (points, panel_title) in enumerate(panels):
        axes = figure.add_subplot(rows, columns, index + 1)
        handles = [axes.scatter(points[labels == k, 0], points[labels == k, 1], s=7, alpha=0.75, color=colours[k],
                                label=name, linewidths=0) for k, name in enumerate(set_names)]
        axes.set_title(panel_title, fontsize=9)
        axes.set_xticks([])
        axes.set_yticks([])  # t-SNE coordinates carry no units; only the grouping matters
    figure.suptitle(title, fontsize=11)
    # One legend for the whole figure, below the panels, with markers large enough to read.
    figure.legend(handles, set_names, loc='lower center', ncol=min(len(set_names), 6), markerscale=2.5,
                  frameon=False, fontsize=9, bbox_to_anchor=(0.5, -0.02))
    figure.tight_layout(rect=(0, 0.06, 1, 1))
    return save_figure(figure, path)


def plot_evolution(iterations, chi_mean, chi_std, psnr, path, title='DDR-CHI and PSNR during training'):
    """CHI (mean ± std band, left axis) and PSNR on clean inputs (right axis) against training iteration.

    All sequences have one entry per checkpoint. Returns ``path``.
    """
    iterations = np.asarray(iterations)
    chi_mean, chi_std = np.asarray(chi_mean, dtype=float), np.asarray(chi_std, dtype=float)
    figure = Figure(figsize=(6.4, 4.0))
    left = figure.add_subplot(1, 1, 1)
    left.plot(iterations, chi_mean, 'o-', color='C0', label='DDR-CHI')
    left.fill_between(iterations, chi_mean - chi_std, chi_mean + chi_std, color='C0', alpha=0.2)
    left.set_xlabel('iteration')
    left.set_ylabel('CHI (mean ± std over t-SNE runs)', color='C0')
    left.tick_params(axis='y', colors='C0')
    right = left.twinx()
    right.plot(iterations, psnr, 's--', color='C3', label='PSNR (clean)')
    right.set_ylabel('PSNR on clean inputs (dB, Y)', color='C3')
    right.tick_params(axis='y', colors='C3')
    lines = left.get_lines()[:1] + right.get_lines()[:1]
    left.legend(lines, [line.get_label() for line in lines], loc='best', fontsize=9)
    left.set_title(title, fontsize=11)
    figure.tight_layout()
    return save_figure(figure, path)
