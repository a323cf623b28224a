"""FAIG figures: where the discovered filters sit in depth, and PSNR drop against the masked percentage.

Drawn on matplotlib's Agg canvas (no pyplot, no global backend), like ``ddrsr.analysis.plots``.
"""
import numpy as np
from matplotlib.figure import Figure

from ddrsr.utils.figures import save_figure


def plot_layer_distribution(counts_by_set, totals, path, title):
    """Bars per conv layer (depth order): how many of the discovered filters each layer holds.

    Args:
        counts_by_set (dict): ``{label: {layer_name: count}}``, e.g. the top-1 % filters for blur and for noise.
        totals (dict): ``{layer_name: number of filters in the layer}`` (the share is printed per panel).
        path (str): PNG to write.
    """
    names = list(totals)
    panels = len(counts_by_set)
    figure = Figure(figsize=(max(8.0, 0.13 * len(names) + 2), 2.6 * panels + 1.2))
    x = np.arange(len(names))
    for row, (label, counts) in enumerate(counts_by_set.items()):
        axes = figure.add_subplot(panels, 1, row + 1)
        values = np.array([counts.get(name, 0) for name in names])
        axes.bar(x, values, color=f'C{row}', width=0.8)
        axes.set_ylabel('filters')
        axes.set_title(f'{label}: {int(values.sum())} filters in {int((values > 0).sum())} of {len(names)} layers',
                       fontsize=9)
        axes.set_xlim(-0.8, len(names) - 0.2)
        axes.set_xticks(x)
        axes.set_xticklabels(names if row == panels - 1 else [], rotation=90, fontsize=5 if len(names) > 40 else 7)
        axes.grid(axis='y', alpha=0.3)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return save_figure(figure, path)


def plot_psnr_drop(table, path):
    """PSNR drop (target minus masked) against p, one panel per masked filter set, one line per method and spec.

    ``table`` is the output of :func:`ddrsr.faig.masking.masking_table`.
    """
    sets = list(dict.fromkeys(row['filters_for'] for row in table['rows']))
    methods = list(dict.fromkeys(row['method'] for row in table['rows']))
    styles = ['-', '--', ':', '-.']
    figure = Figure(figsize=(5.2 * len(sets), 4.2))
    for column, masked in enumerate(sets):
        axes = figure.add_subplot(1, len(sets), column + 1)
        for m, method in enumerate(methods):
            rows = sorted((r for r in table['rows'] if r['filters_for'] == masked and r['method'] == method),
                          key=lambda r: r['percent'])
            if not rows:
                continue
            for s, spec in enumerate(table['specs']):
                axes.plot([r['percent'] for r in rows], [r['drop'][spec] for r in rows], marker='o', markersize=3,
                          color=f'C{m}', linestyle=styles[s % len(styles)], label=f'{method}, {spec} input')
        axes.set_title(f'masked: top-p % filters for {masked}', fontsize=10)
        axes.set_xlabel('p (% of all filters)')
        axes.set_ylabel('PSNR drop (dB)')
        axes.grid(alpha=0.3)
        axes.legend(fontsize=6)
    figure.tight_layout()
    return save_figure(figure, path)
