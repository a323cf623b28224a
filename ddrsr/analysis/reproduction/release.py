"""docs/ANALYSIS_RELEASE.md: the DDR analysis of the release models, the blind encoder and the shipped RRDBs.

docs/ANALYSIS.md reproduces the paper with the networks of its own trainings (SRResNet/SRGAN on clean data).
This report measures what ships instead, with the same commands:

* ``evolution``: ``ddrsr evolution`` over the blind encoder's fine-tuning (``options/train_srgan_encoder_x4_lite_blind.yml``),
  at the embedding layer and at ``upconv1``. It starts from the shipped clean encoder, counted as iteration 0.
* ``generalization``: ``ddrsr generalization`` of the shipped RRDBs and the default model, at the layers of
  docs/ANALYSIS.md's section 3.

Each stage is cached as JSON in the work folder (:class:`~.stages.Cache`), so the report can be rewritten
without measuring, and a run that was stopped measures only what is missing.
"""
import datetime
import os
import shlex

from ddrsr.analysis.scores import format_score
from ddrsr.analysis.verdicts import chi_text, spearman
from ddrsr.utils.markdown import markdown_table, write_text

from .commands import ROOT, copy_figure
from .runs import DEFAULT_ENCODER_LAYER, OTHER_LAYERS, link_checkpoints, numbered_checkpoints, patch_arguments
from .sections import section_generalization
from .stages import measure, stage_generalization

BLIND_OPTION = 'options/train_srgan_encoder_x4_lite_blind.yml'
BLIND_START = 'weights/ddr_encoder_srgan_x4_lite.pth'  # the shipped clean encoder the blind run started from
BLIND_EXPERIMENT = 'experiments/srgan_encoder_x4_lite_blind'
EVOLUTION_LAYERS = [DEFAULT_ENCODER_LAYER, OTHER_LAYERS[0]]
STAGES = ('evolution', 'generalization', 'report')


def blind_checkpoints(folder, experiment=BLIND_EXPERIMENT, start=BLIND_START):
    """Links ``net_g_<N>.pth`` in ``folder``: N = 0 for ``start``, N for the checkpoints of ``experiment``.

    ``ddrsr evolution`` numbers checkpoints by their file name. Paths are relative to the repository root.
    Returns the links in iteration order; empty when the run's checkpoints are not there (another machine),
    in which case only the cache can serve.
    """
    found = numbered_checkpoints(experiment)
    if not found:
        return []
    return link_checkpoints({0: os.path.join(ROOT, start), **found}, folder)


def stage_evolution(cache):
    done = cache.load('evolution', fresh=True)
    links = blind_checkpoints(os.path.join(ROOT, cache.work, 'evolution', 'ckpt'))
    for layer in EVOLUTION_LAYERS:
        if layer in done:
            continue
        if len(links) < 2:
            raise SystemExit(f'release analysis: {BLIND_EXPERIMENT}/models has no checkpoints to follow')
        argv = ['evolution', '--checkpoints', *[os.path.relpath(link, ROOT) for link in links], '--opt', BLIND_OPTION,
                '--layer', layer, *patch_arguments(), '--output', os.path.join(cache.work, 'evolution', layer)]
        done[layer] = measure(argv)
        cache.save('evolution', done)


def run_stages(stages, cache):
    if 'evolution' in stages:
        stage_evolution(cache)
    if 'generalization' in stages:
        stage_generalization(cache)


def section_evolution(paths, evolution, figures):
    """The blind encoder's DDR-CHI per checkpoint at each layer of ``evolution``, and clean PSNR."""
    out = ['## 1. Evolution of the blind encoder', '',
           f'The blind encoder (`{BLIND_OPTION}`) fine-tunes the shipped clean encoder (`{BLIND_START}`, iteration 0 '
           'here, 3000 iterations on clean data) with the L1 loss on the default model\'s random pipeline (blur, '
           'resize, noise, JPEG, 20% undegraded). DDR-CHI on clean/blur2/noise20 patches of the 6 validation photos; '
           'PSNR on their clean ×4 centre crops (Y, 192 px). docs/ANALYSIS.md\'s section 2 follows the clean-data '
           'encoder\'s training in the same way.', '']
    if not evolution:
        return out + ['Not measured yet.', '']
    layers = [layer for layer in EVOLUTION_LAYERS if layer in evolution]
    by = {layer: {row['iteration']: row for row in evolution[layer]['result']['rows']} for layer in layers}
    iterations = sorted({iteration for rows in by.values() for iteration in rows})
    table = []
    for iteration in iterations:
        rows = [by[layer].get(iteration) for layer in layers]
        psnr = next((row['psnr_clean'] for row in rows if row), None)
        table.append([iteration, *(format_score({'mean': row['chi_mean'], 'std': row['chi_std']}, aligned=True)
                                   if row else '' for row in rows), '' if psnr is None else f'{psnr:.2f}'])
    out += markdown_table(['iterations', *(f'DDR-CHI, `{layer}`' for layer in layers), 'PSNR, clean'], table,
                          align='r' * (len(layers) + 2))
    out.append('')
    for layer in layers:
        rows = sorted(by[layer].values(), key=lambda row: row['iteration'])
        rho = spearman([row['iteration'] for row in rows], [row['chi_mean'] for row in rows])
        out.append(f'- `{layer}`: CHI {chi_text(rows[0]["chi_mean"])} at {rows[0]["iteration"]} → '
                   f'{chi_text(rows[-1]["chi_mean"])} at {rows[-1]["iteration"]}; Spearman ρ(iteration, CHI) = '
                   f'{"n/a" if rho is None else f"{rho:+.2f}"}.')
        name = 'release_evolution_' + layer.replace('.', '_') + '.png'
        figures[layer] = copy_figure(evolution[layer]['result']['plot'], paths.figures, paths.doc, name)
    out.append('')
    out += [f'![blind encoder evolution at {layer}]({figures[layer]})' for layer in layers]
    return out + ['']


def write_report(paths, cache, argv=()):
    """Write ``paths.doc`` and its figures from ``cache`` alone; returns ``paths.doc``."""
    evolution, generalization = cache.load('evolution'), cache.load('generalization')
    figures = {}
    out = ['# DDR analysis of the release models', '',
           f'Generated by `{shlex.join(["python", "scripts/analyze_release.py", *argv])}` on '
           f'{datetime.date.today().isoformat()} from the cached results in `{paths.work}`; do not edit by hand. '
           'Every number comes from a `ddrsr` command listed at the end. docs/ANALYSIS.md reproduces the paper with '
           'networks trained for it; this report measures the weights that ship (weights/README.md).', '']
    out += section_evolution(paths, evolution, figures)
    text, _ = section_generalization(paths, generalization, figures, title='## 2. Generalization: DDR-CHI of the '
                                     'shipped RRDB models and the default', figure_prefix='release_')
    out += text + [
        'The default model differs from the pair in two ways that bear on its row: its guiding encoder is the '
        'blind one (section 1), and it adds its output to a bicubic upscale of the input (`global_residual: '
        'bicubic`), so its last layers hold the correction alone, which differs by degradation by construction '
        '(none for clean inputs, sharpening for blurred, denoising for noisy ones).', '']
    commands = [entry['command'] for stage in (evolution, generalization) for entry in stage.values()]
    out += ['## Commands', '', '```bash', *commands, '```', '']
    return write_text(paths.doc, '\n'.join(out))
