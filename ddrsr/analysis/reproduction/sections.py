"""The sections of docs/ANALYSIS.md, each from the cached results of its stage alone.

Each ``section_*`` returns its Markdown lines (and, where the summary needs them, its verdicts); figures are
copied into ``paths.figures`` and linked relative to ``paths.doc``. A section whose stage has not run yet says
so. Scores are printed by :func:`ddrsr.analysis.scores.format_score`, verdicts decided by
:mod:`ddrsr.analysis.verdicts`.
"""
import dataclasses
import os

import numpy as np

from ddrsr.analysis import verdicts
from ddrsr.analysis.scores import format_score
from ddrsr.analysis.verdicts import chi_text, clusters_more_by, identification_verdict, paper_expectations, spearman
from ddrsr.utils.markdown import markdown_table

from .commands import ROOT, copy_figure
from .runs import (DEFAULT_ENCODER_LAYER, ENCODER_OPTION, EXTRA_RRDB, IDENTIFY_OTHER_LAYER, MORE_ITERATIONS,
                   OTHER_LAYERS, RRDB_LAYERS, SHIPPED_RRDB, analysed_models, block_layers)


@dataclasses.dataclass
class ReportPaths:
    """Where the report reads and writes: ``work`` (the stages' cache, relative to the repository root),
    ``doc`` (the Markdown file) and ``figures`` (the folder of the figures it shows)."""
    work: str
    doc: str
    figures: str


def label(name):
    """A zoo model's row title, as in docs/RESULTS.md."""
    from ddrsr.zoo import MODELS

    return MODELS[name]['label']


def generalization_order(table):
    """``(ordering text, met)`` for the expectation clean > b+n > DDR (higher CHI = generalizes worse)."""
    return verdicts.generalization_order(table, SHIPPED_RRDB, label)


def generalization_notes(table, separable=1.0):
    """Why the ordering may fail, read from the numbers: ``{'ddr_highest': bool, 'plain_unseparable': bool}``."""
    return verdicts.generalization_notes(table, SHIPPED_RRDB, separable)


def mark(met):
    return '—' if met is None else '**yes**' if met else '**no**'


def plot_layer_profiles(layers, models, layer_names, path):
    """CHI (log scale, mean ± std over t-SNE runs) against depth, one line per network."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4.5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    for model in models:
        entry = layers.get(model['key'])
        if not entry:
            continue
        rows = {row['layer']: row for row in entry['result']['layers']}
        means = [max(rows[name]['chi']['mean'], 1e-4) for name in layer_names]
        stds = [rows[name]['chi']['std'] for name in layer_names]
        axes.errorbar(range(len(layer_names)), means, yerr=stds, marker='o' if model['gr'] else 's', capsize=3,
                      linestyle='-' if model['gr'] else '--', label=f'{model["net"]}, {"GR" if model["gr"] else "no GR"}'
                      f' ({model["l1_iters"]} L1 + {model["gan_iters"]} GAN it.)')
    axes.set_yscale('log')
    axes.set_xticks(range(len(layer_names)), layer_names)
    axes.set_ylabel('DDR-CHI (clean / blur2 / noise20)')
    axes.set_title('Degradation clustering by depth (higher = more separable)')
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=7)
    figure.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    figure.savefig(path, dpi=110)
    return path


def section_layers(paths, layers, runs, gan_start, figures):
    models = analysed_models(runs, gan_start)
    names = block_layers(runs['gr']['opt'])
    last = names[-1]
    columns = [f'{names[0]}', f'{names[1]} (¼)', f'{names[2]} (½)', f'{last} (last)'] + OTHER_LAYERS
    out = ['## 1. SRResNet and SRGAN, with and without global residual (clean training data only)', '',
           f'Every network is `SRResNet` (nf {runs["gr"]["opt"]["network_g"]["num_feat"]}, '
           f'{runs["gr"]["opt"]["network_g"]["num_block"]} residual blocks) trained on clean bicubic ×4 LR from the '
           f'Debian photo crops, with the DDR encoder\'s schedule (`{ENCODER_OPTION}`): L1 loss up to iteration '
           f'{gan_start}, then GAN + L1 loss. The checkpoint at {gan_start} is the MSE-type **SRResNet**, the last '
           'one the **SRGAN**. The GR run is the shipped encoder\'s own run; the no-GR run differs only in '
           '`with_gr: false`. "SRResNet (more)" continues each SRResNet with the L1 loss alone, at the learning '
           f'rate it had reached, for {MORE_ITERATIONS} more iterations (the paper\'s "try more iterations" check). '
           f'`{", ".join(OTHER_LAYERS)}` are the "try another layer" check: the up-sampling convolutions after the '
           'trunk.', '']
    table = []
    for model in models:
        entry = layers.get(model['key'])
        prefix = [model['net'], 'yes' if model['gr'] else 'no', model['l1_iters'], model['gan_iters']]
        if not entry:
            table.append(prefix + ['not trained yet'] + ['—'] * (len(columns) - 1))
            continue
        rows = {row['layer']: row for row in entry['result']['layers']}
        table.append(prefix + [format_score(rows[name]['chi'], aligned=True) for name in names + OTHER_LAYERS])
    out += markdown_table(['network', 'GR', 'L1 it.', 'GAN it.', *columns], table, align='llrr' + 'r' * len(columns))
    out += ['', 'Cells: DDR-CHI, mean ± std over 5 t-SNE runs (seeds 0–4), on 3 × 100 LR patches of 32×32 from the '
            '6 held-out photos (`clean`, `blur2`, `noise20`; the specs of `ddrsr/data/degradations.py`).', '']
    if layers:
        path = plot_layer_profiles(layers, models, names + OTHER_LAYERS,
                                   os.path.join(ROOT, paths.work, 'layer_profiles.png'))
        figures['profiles'] = copy_figure(path, paths.figures, paths.doc, 'layer_profiles.png')
        out += [f'![CHI by depth]({figures["profiles"]})', '']
    out += ['**The paper\'s expectations, checked against these numbers:**', '']
    expectations = paper_expectations(layers, last)
    out += markdown_table(['expectation', 'measured', 'met'], [[e.text, e.measured, mark(e.met)] for e in expectations])
    out.append('')
    for key in ('srresnet_gr', 'srresnet_nogr', 'srgan_gr', 'srgan_nogr'):
        entry = layers.get(key)
        if entry:
            plot = {row['layer']: row['plot'] for row in entry['result']['layers']}[last]
            figures[key] = copy_figure(plot, paths.figures, paths.doc, f'tsne_{key}_{last}.png')
            out += [f'![t-SNE of {key} at {last}]({figures[key]})', '']
    return out, expectations


def section_evolution(paths, evolution, figures):
    out = ['## 2. Training evolution', '',
           'DDR-CHI at the last residual block and PSNR (clean ×4, Y, 6 held-out centre crops of 192) of every '
           'L1-only checkpoint: the first run up to its GAN phase, then the "more" continuation (iterations counted '
           'from the start). The continuation starts with fresh Adam states (BasicSR cannot resume another run\'s '
           'training state) at a constant learning rate, so the jump where the continuation begins is partly the '
           'schedule, not only the iterations.', '']
    if not evolution:
        return out + ['Not measured yet.', ''], []
    iterations = sorted({row['iteration'] for entry in evolution.values() for row in entry['result']['rows']})
    by = {gr: {row['iteration']: row for row in entry['result']['rows']} for gr, entry in evolution.items()}
    keys = [gr for gr in ('gr', 'nogr') if gr in by]
    header = ['L1 iterations']
    for gr in keys:
        header += [f'CHI, {"GR" if gr == "gr" else "no GR"}', f'PSNR, {"GR" if gr == "gr" else "no GR"}']
    table = []
    for iteration in iterations:
        cells = [iteration]
        for gr in keys:
            row = by[gr].get(iteration)
            cells += ([format_score({'mean': row['chi_mean'], 'std': row['chi_std']}, aligned=True),
                       f'{row["psnr_clean"]:.2f}'] if row else ['', ''])
        table.append(cells)
    out += markdown_table(header, table, align='r' * len(header))
    out.append('')
    trends = []
    for gr in keys:
        rows = sorted(by[gr].values(), key=lambda row: row['iteration'])
        rho = spearman([r['iteration'] for r in rows], [r['chi_mean'] for r in rows])
        first, final = rows[0], rows[-1]
        label = 'GR' if gr == 'gr' else 'no GR'
        trends.append((gr, rho, first, final))
        out.append(f'- {label}: CHI {chi_text(first["chi_mean"])} at {first["iteration"]} → '
                   f'{chi_text(final["chi_mean"])} at '
                   f'{final["iteration"]}; Spearman ρ(iteration, CHI) = '
                   f'{"n/a" if rho is None else f"{rho:+.2f}"}.')
        figures[f'evolution_{gr}'] = copy_figure(evolution[gr]['result']['plot'], paths.figures, paths.doc,
                                                 f'evolution_{gr}.png')
    out.append('')
    out += [f'![evolution, {"GR" if gr == "gr" else "no GR"}]({figures[f"evolution_{gr}"]})' for gr in keys]
    return out + [''], trends


def section_generalization(paths, generalization, figures, title='## 3. Generalization: DDR-CHI of the shipped RRDB '
                           'models', figure_prefix=''):
    out = [title, '',
           'Lower DDR-CHI means the network treats clean, blurred and noisy inputs alike, which the paper reads as '
           'better generalization. Expected: RRDB (clean) ≫ RRDB (b+n) > RRDB-DDR (b+n). The default model '
           '(trained with JPEG as well) is shown for reference; it is not part of the expectation.', '']
    if not generalization:
        return out + ['Not measured yet.', ''], []
    orders = []
    tables = {layer: {row['model']: row for row in entry['result']['models']} for layer, entry in generalization.items()}
    layers = [layer for layer in RRDB_LAYERS if layer in tables]
    header = ['model'] + [('last RRDB block (' + next(iter(tables[layer].values()))['layer'] + ')')
                          if layer == 'body' else layer for layer in layers]
    out += markdown_table(header, [[label(name), *(format_score(tables[layer][name]['chi'], aligned=True)
                                                  for layer in layers)] for name in SHIPPED_RRDB + EXTRA_RRDB],
                          align='l' + 'r' * len(layers))
    out.append('')
    for layer in layers:
        order, met = generalization_order(list(tables[layer].values()))
        orders.append((layer, order, met, generalization_notes(list(tables[layer].values()))))
        out.append(f'- At `{layer}`: {order}. Expected ordering met: {mark(met)}.')
        figures[f'generalization_{layer}'] = copy_figure(generalization[layer]['result']['plot'], paths.figures,
                                                         paths.doc, f'{figure_prefix}generalization_{layer}.png')
    out.append('')
    out += [f'![generalization at {layer}]({figures[f"generalization_{layer}"]})' for layer in layers]
    return out + [''], orders


def section_identify(paths, identify, other, figures):
    out = ['## 4. Distortion identification', '']
    if not identify:
        return out + ['Not measured yet.', ''], None
    result = identify['result']
    dataset = result['dataset']
    figures['identify'] = copy_figure(result['plot'], paths.figures, paths.doc, 'identification.png')
    out += [f'{dataset["train_samples"]} training samples from {len(dataset["train_photos"])} photos, '
            f'{dataset["test_samples"]} test samples from {len(dataset["test_photos"])} other photos (split by '
            'photo; distortions and levels in `ddrsr/analysis/distortions.py`). Cells: per-class precision; ALL: '
            f'accuracy. Whole command: {identify["seconds"] / 60:.1f} min on the CPU.', '',
            result['table_markdown']]
    if other:
        layer, pool = IDENTIFY_OTHER_LAYER
        out += [f'Another encoder layer, `{layer}` (the first up-sampling convolution; its map average-pooled '
                f'{pool}×{pool} to fit in memory), same photos and split:', '', other['result']['table_markdown']]
    out += [f'![confusion matrices]({figures["identify"]})', '']
    verdict = identification_verdict({layer: run['result']['results'] for layer, run in
                                      ((DEFAULT_ENCODER_LAYER, identify), (IDENTIFY_OTHER_LAYER[0], other)) if run})
    best = verdict['best']
    out += [f'- Paper\'s expectation: DDR features identify distortions better than BRISQUE and a supervised CNN. '
            f'Best here: `{best[1]}`' + (f' at `{best[2]}`' if best[1].startswith('ddr') else '') +
            f' ({best[0]:.3f}). Met: {mark(verdict["met"])}.', '']
    return out, verdict


def section_classification(paths, runs, figures):
    """``runs``: ``{cache name: cached entry}`` of classification-vs-sr runs (one photo per class, grouped)."""
    out = ['## 5. Classification vs SR', '']
    if not runs:
        return out + ['Not measured yet.', ''], []
    found = []
    for stage, entry in runs.items():
        result = entry['result']
        per_class = result.get('photos_per_class', 1)
        figures[stage] = copy_figure(result['plot'], paths.figures, paths.doc, f'{stage}.png')
        classes = (f'{len(result["photos"])} photos are the content classes' if per_class == 1 else
                   f'{len(result["photos"])} content classes of {per_class} photos each')
        out += [f'**{classes}**; {result["points"]} degraded LR patches ({", ".join(result["specs"])}) from photo '
                'halves the classifier never saw. A timm resnet18 is trained from scratch to tell the classes apart '
                '(held-out accuracy: ' + ', '.join(f'{k} {v:.3f}' for k, v in result['classifier_accuracy'].items()) +
                '). CHI of the same t-SNE points labelled two ways:', '']
        table = []
        for name, row in result['networks'].items():
            by = clusters_more_by(row)
            found.append((name, by, per_class))
            table.append([name, row['layer'], format_score(row['chi_content'], aligned=True),
                          format_score(row['chi_degradation'], aligned=True), by])
        out += markdown_table(['network', 'layer', 'CHI by content', 'CHI by degradation', 'clusters more by'], table,
                              align='llrrl')
        out += ['', f'![content vs degradation, {classes}]({figures[stage]})', '']
    return out, found


def section_timing(timing):
    out = ['## 6. Runtime of `ddrsr analyze`', '']
    if not timing:
        return out + ['Not measured yet.', '']
    walls = timing['seconds']
    out += [f'`{timing["command"]}`: 3 sets × 100 patches, 5 t-SNE runs, the whole command (Python start-up, '
            f'imports, cutting and degrading the patches, features, PCA, t-SNE, figures). {timing["cpus"]} CPU '
            f'cores, no GPU. Wall time of {len(walls)} runs: ' + ', '.join(f'{w:.1f} s' for w in walls) +
            f' (median **{float(np.median(walls)):.1f} s**; target < 60 s: {mark(float(np.median(walls)) < 60)}). '
            '1-minute load average before each: ' + ', '.join(f'{v:.2f}' for v in timing['load_before']) + '.', '']
    return out
