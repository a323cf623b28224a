#!/usr/bin/env python
"""Reproduce Liu et al.'s DDR findings at lite scale on 2 CPU cores and write docs/ANALYSIS.md.

    python scripts/reproduce_ddr.py                       # everything; trains what is missing, resumable
    python scripts/reproduce_ddr.py --stages train        # only the trainings
    python scripts/reproduce_ddr.py --stages report       # rewrite docs/ANALYSIS.md from the cached results

Stages (each caches its JSON in ``--work``; ``--redo STAGE`` measures it again):

* ``train``: SRResNet-style generators on CLEAN bicubic x4 data, with and without global residual (GR).
  Each run is the DDR encoder's schedule (``options/train_srgan_encoder_x4_lite.yml``): L1 loss up to
  ``gan_start_iter``, then GAN + L1. So the checkpoint at ``gan_start_iter`` is the MSE-type SRResNet and
  the last one the SRGAN. The GR run *is* the shipped encoder's run. ``more`` runs continue each SRResNet
  with the L1 loss only, for the paper's "try more iterations" check.
* ``layers``: ``ddrsr analyze`` at conv_first and the blocks 1/4, 1/2 and last, on clean/blur2/noise20.
* ``evolution``: ``ddrsr evolution`` over every checkpoint of the GR run.
* ``generalization``: ``ddrsr generalization`` of the shipped RRDB (clean), RRDB (b+n), RRDB-DDR (b+n).
* ``identify``: ``ddrsr identify`` (DDR vs BRISQUE vs ResNet18).
* ``classification``: ``ddrsr classification-vs-sr``.
* ``timing``: wall time of ``ddrsr analyze``, 3 sets x 100 patches x 5 t-SNE runs.
* ``report``: docs/ANALYSIS.md and its figures (docs/analysis/), from the cached JSON only.

Every number comes from a ddrsr CLI run as a subprocess, as a user would run it; the verdicts in the
report are computed from those numbers, never written by hand.
"""
import argparse
import copy
import datetime
import json
import os
import shlex
import subprocess
import sys

import numpy as np
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # also when loaded by file path (tests)
from report_utils import ROOT, copy_figure, run_cli  # noqa: E402

if ROOT not in sys.path:  # the repository's ddrsr, also when it is not installed
    sys.path.append(ROOT)
from ddrsr.analysis import verdicts  # noqa: E402
# The verdicts are library code (ddrsr/analysis/verdicts.py); this script runs, caches and words them.
from ddrsr.analysis.verdicts import chi, paper_expectations, spearman  # noqa: E402,F401

STAGES = ('train', 'layers', 'evolution', 'generalization', 'identify', 'classification', 'timing', 'report')
ENCODER_OPTION = 'options/train_srgan_encoder_x4_lite.yml'
MORE_ITERATIONS = 3000  # extra L1 iterations of the "more" runs
MORE_GAN_ITERATIONS = 1000  # extra GAN iterations for the no-GR SRGAN
HR, META = 'datasets/debian_photos/hr', 'scripts/debian_photos_val.txt'  # 6 photos no training run has seen
SPECS = ['clean', 'blur2', 'noise20']
OTHER_LAYERS = ['upconv1', 'upconv2']  # deeper than the residual blocks: the "another layer" check
SHIPPED_RRDB = ['rrdb_clean_x4_lite', 'rrdb_bn_x4_lite', 'rrdb_ddr_bn_x4_lite']
EXTRA_RRDB = ['rrdb_ddr_real_x4_lite']  # the default model, shown beside the paper's three
# 'body': each model's default, its last RRDB block; then later layers, the "try another layer" check:
# conv_body ends the trunk, conv_up1 works at 2x, conv_hr at 4x the LR size.
RRDB_LAYERS = ['body', 'conv_body', 'conv_up1', 'conv_hr']
DEFAULT_ENCODER_LAYER = 'body.7'  # ddrsr identify's default layer of the encoder
IDENTIFY_OTHER_LAYER = ('upconv1', 2)  # "another layer" for identification: after the trunk, 2x2-pooled (memory)
# classification-vs-sr: each photo its own content class, then classes of several photos (as semantic classes
# are), so that a class is more than one photo's colours and textures.
CLASSIFICATION_RUNS = {'classification': ['--photos', '8'],
                       'classification_groups': ['--photos', '6', '--photos_per_class', '4']}


# ------------------------------------------------------------------------------------------------ training
def load_option(path):
    with open(os.path.join(ROOT, path)) as f:
        return yaml.safe_load(f)


def continuation(source, name, start, iterations, gan):
    """An option dict that goes on from iteration ``start`` of run ``source`` for ``iterations`` more.

    L1 only (``gan=False``) or GAN + L1 from the start (``gan=True``, the discriminator goes on too), at the
    learning rates the source run had reached at ``start`` (after its milestones), kept constant. The
    optimizer states start afresh: BasicSR cannot resume another run's training state.
    """
    more = copy.deepcopy(source)
    more['name'] = name
    models = os.path.join('experiments', source['name'], 'models')
    more['path']['pretrain_network_g'] = os.path.join(models, f'net_g_{start}.pth')
    more['path']['param_key_g'] = 'params_ema'
    if gan:
        more['path']['pretrain_network_d'] = os.path.join(models, f'net_d_{start}.pth')
    more['train']['total_iter'] = iterations
    more['train']['gan_start_iter'] = 0 if gan else iterations  # SRGANEncoderModel: L1 only up to gan_start_iter
    scheduler = source['train']['scheduler']
    factor = scheduler.get('gamma', 1.0) ** sum(1 for m in scheduler.get('milestones', []) if m < start)
    for optimizer in ('optim_g', 'optim_d') if gan else ('optim_g', ):  # D is idle in an L1-only run
        more['train'][optimizer]['lr'] = float(source['train'][optimizer]['lr']) * factor
    more['train']['scheduler'] = {'type': 'MultiStepLR', 'milestones': [iterations + 1], 'gamma': 1.0}
    return more


def training_runs(work):
    """``{key: {'option', 'opt', 'experiment', 'total_iter'[, 'after']}}`` for the five trainings.

    ``gr`` is the encoder's own option file; the others are derived from it (written under ``work``) so
    that the schedules differ only where the experiment asks them to: ``nogr`` (``with_gr: false``),
    ``gr_more``/``nogr_more`` (more L1 iterations from each SRResNet) and ``nogr_gan_more`` (more GAN
    iterations from the no-GR SRGAN).
    """
    base = load_option(ENCODER_OPTION)
    gan_start, total = int(base['train']['gan_start_iter']), int(base['train']['total_iter'])
    runs = {'gr': {'option': ENCODER_OPTION, 'opt': base}}
    nogr = copy.deepcopy(base)
    nogr['name'] = 'srgan_nogr_x4_lite'
    nogr['network_g']['with_gr'] = False
    runs['nogr'] = {'opt': nogr}
    for key in ('gr', 'nogr'):
        runs[f'{key}_more'] = {'opt': continuation(runs[key]['opt'], f'srresnet_{key}_more_x4_lite', gan_start,
                                                   MORE_ITERATIONS, gan=False), 'after': key}
    runs['nogr_gan_more'] = {'opt': continuation(nogr, 'srgan_nogr_more_x4_lite', total, MORE_GAN_ITERATIONS,
                                                 gan=True), 'after': 'nogr'}
    for run in runs.values():
        run.setdefault('option', os.path.join(work, 'options', f'train_{run["opt"]["name"]}.yml'))
        run['experiment'] = os.path.join('experiments', run['opt']['name'])
        run['total_iter'] = int(run['opt']['train']['total_iter'])
    return runs, gan_start


def final_checkpoint(run):
    return os.path.join(ROOT, run['experiment'], 'models', f'net_g_{run["total_iter"]}.pth')


def write_option(run):
    path = os.path.join(ROOT, run['option'])
    if run['option'] == ENCODER_OPTION:
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(f'# Written by scripts/reproduce_ddr.py from {ENCODER_OPTION}; edit that file, not this one.\n')
        yaml.safe_dump(run['opt'], f, sort_keys=False)


def train_command(run):
    return [sys.executable, 'ddrsr/train.py', '-opt', run['option'], '--auto_resume']


def stage_train(args, runs):
    """Train (or resume) every run whose final checkpoint is missing; ``--only`` picks runs."""
    for key, run in runs.items():
        if args.only and key not in args.only:
            continue
        write_option(run)
        if os.path.isfile(final_checkpoint(run)):
            print(f'reproduce_ddr: {key}: {run["experiment"]} is trained', file=sys.stderr)
            continue
        source = run['opt']['path'].get('pretrain_network_g')
        if source and not os.path.isfile(os.path.join(ROOT, source)):
            sys.exit(f'reproduce_ddr: {key} starts from {source}, which does not exist yet; '
                     f'train {run["after"]!r} first')
        command = train_command(run)
        print('$ ' + shlex.join(command[1:]), file=sys.stderr, flush=True)
        if subprocess.run(command, cwd=ROOT).returncode != 0:
            sys.exit(f'reproduce_ddr: training {key} failed; re-run to resume from its last checkpoint')



# ------------------------------------------------------------------------------------------ measurements
def patch_arguments(runs=5):
    """The test sets of every CHI in the report: 100 LR patches of 32x32 per spec from the held-out photos."""
    return ['--hr', HR, '--meta_info', META, '--specs', *SPECS, '--patches', '100', '--runs', str(runs),
            '--device', 'cpu']


def block_layers(opt):
    """conv_first and the residual blocks at 1/4, 1/2 and the end of the trunk (the paper's columns)."""
    blocks = int(opt['network_g']['num_block'])
    return ['conv_first', f'body.{blocks // 4 - 1}', f'body.{blocks // 2 - 1}', f'body.{blocks - 1}']


def analysed_models(runs, gan_start):
    """The networks of section 1: ``[{key, net, gr, run, iteration, l1_iters, gan_iters}]``."""
    models = []
    for gr in ('gr', 'nogr'):
        total = runs[gr]['total_iter']
        models += [dict(key=f'srresnet_{gr}', net='SRResNet', gr=gr == 'gr', run=gr, iteration=gan_start,
                        l1_iters=gan_start, gan_iters=0),
                   dict(key=f'srgan_{gr}', net='SRGAN', gr=gr == 'gr', run=gr, iteration=total,
                        l1_iters=gan_start, gan_iters=total - gan_start),
                   dict(key=f'srresnet_{gr}_more', net='SRResNet (more)', gr=gr == 'gr', run=f'{gr}_more',
                        iteration=runs[f'{gr}_more']['total_iter'],
                        l1_iters=gan_start + runs[f'{gr}_more']['total_iter'], gan_iters=0)]
    more = runs['nogr_gan_more']
    models.append(dict(key='srgan_nogr_more', net='SRGAN (more)', gr=False, run='nogr_gan_more',
                       iteration=more['total_iter'], l1_iters=gan_start,
                       gan_iters=runs['nogr']['total_iter'] - gan_start + more['total_iter']))
    for model in models:
        model['checkpoint'] = os.path.join(runs[model['run']]['experiment'], 'models',
                                           f'net_g_{model["iteration"]}.pth')
    return models


class Cache:
    """One JSON file per stage under ``work``; a stage re-run keeps what it already measured."""

    def __init__(self, work, redo):
        self.work, self.redo = work, set(redo)

    def path(self, stage):
        return os.path.join(ROOT, self.work, f'{stage}.json')

    def load(self, stage, fresh=False):
        if (fresh and stage in self.redo) or not os.path.isfile(self.path(stage)):
            return {}
        with open(self.path(stage)) as f:
            return json.load(f)

    def save(self, stage, data):
        """Write the stage's JSON atomically: a run killed mid-write keeps the previous cache, never half of one."""
        from ddrsr.utils.atomic_file import AtomicFile

        os.makedirs(os.path.dirname(self.path(stage)), exist_ok=True)
        with AtomicFile(self.path(stage)) as f:
            f.write(json.dumps(data, indent=2).encode())


def stage_layers(cache, runs, gan_start):
    done = cache.load('layers', fresh=True)
    for model in analysed_models(runs, gan_start):
        if model['key'] in done:
            continue
        if not os.path.isfile(os.path.join(ROOT, model['checkpoint'])):
            print(f'reproduce_ddr: {model["key"]}: {model["checkpoint"]} is not trained yet; skipped',
                  file=sys.stderr)
            continue
        layers = block_layers(runs[model['run']]['opt']) + OTHER_LAYERS
        argv = ['analyze', '--opt', runs[model['run']]['option'], '--weights', model['checkpoint'],
                *[item for layer in layers for item in ('--layer', layer)], *patch_arguments(),
                '--out', os.path.join(cache.work, 'layers', model['key'])]
        result, wall = run_cli(argv, 'reproduce_ddr')
        done[model['key']] = {**model, 'command': 'ddrsr ' + shlex.join(argv), 'result': result,
                              'seconds': round(wall, 1)}
        cache.save('layers', done)


def cumulative_checkpoints(runs, gr, gan_start, folder):
    """Links ``net_g_<L1 iterations so far>.pth`` to the L1-only checkpoints of run ``gr`` and its "more" run.

    ``ddrsr evolution`` numbers checkpoints by their file name, so the continuation's ``net_g_500.pth``
    becomes ``net_g_<gan_start + 500>.pth`` here.
    """
    os.makedirs(folder, exist_ok=True)
    links = []
    for run, offset, last in ((runs[gr], 0, gan_start), (runs[f'{gr}_more'], gan_start, None)):
        models = os.path.join(ROOT, run['experiment'], 'models')
        if not os.path.isdir(models):
            continue
        for name in os.listdir(models):
            stem = name[len('net_g_'):-len('.pth')] if name.startswith('net_g_') and name.endswith('.pth') else ''
            if not stem.isdigit() or (last is not None and int(stem) > last):
                continue
            link = os.path.join(folder, f'net_g_{offset + int(stem)}.pth')
            if os.path.lexists(link):
                os.remove(link)
            os.symlink(os.path.join(models, name), link)
            links.append((offset + int(stem), link))
    return [link for _, link in sorted(links)]


def stage_evolution(cache, runs, gan_start):
    done = cache.load('evolution', fresh=True)
    for gr in ('gr', 'nogr'):
        if gr in done:
            continue
        if not os.path.isfile(final_checkpoint(runs[f'{gr}_more'])):
            print(f'reproduce_ddr: evolution {gr}: {runs[f"{gr}_more"]["experiment"]} is not trained yet; skipped',
                  file=sys.stderr)
            continue
        links = cumulative_checkpoints(runs, gr, gan_start, os.path.join(ROOT, cache.work, 'evolution', gr, 'ckpt'))
        layer = block_layers(runs[gr]['opt'])[-1]
        argv = ['evolution', '--checkpoints', *[os.path.relpath(link, ROOT) for link in links],
                '--opt', runs[gr]['option'], '--layer', layer, *patch_arguments(),
                '--out', os.path.join(cache.work, 'evolution', gr)]
        result, wall = run_cli(argv, 'reproduce_ddr')
        done[gr] = {'command': 'ddrsr ' + shlex.join(argv), 'result': result, 'seconds': round(wall, 1)}
        cache.save('evolution', done)


def stage_generalization(cache):
    done = cache.load('generalization', fresh=True)
    for layer in RRDB_LAYERS:
        if layer in done:
            continue
        argv = ['generalization', *[item for name in SHIPPED_RRDB + EXTRA_RRDB for item in ('--model', name)],
                *(['--layer', layer] if layer != 'body' else []), *patch_arguments(),
                '--out', os.path.join(cache.work, 'generalization', layer)]
        result, wall = run_cli(argv, 'reproduce_ddr')
        done[layer] = {'command': 'ddrsr ' + shlex.join(argv), 'result': result, 'seconds': round(wall, 1)}
        cache.save('generalization', done)


def stage_single(cache, stage, argv):
    """A stage that is one CLI call (identify, classification)."""
    if cache.load(stage, fresh=True):
        return
    result, wall = run_cli(argv, 'reproduce_ddr')
    cache.save(stage, {'command': 'ddrsr ' + shlex.join(argv), 'result': result, 'seconds': round(wall, 1)})


def stage_timing(cache, repeats=3):
    """Wall time of the whole ``ddrsr analyze`` command (start-up included), 3 sets x 100 patches x 5 runs."""
    if cache.load('timing', fresh=True):
        return
    argv = ['analyze', '--model', 'srgan_encoder_x4_lite', '--layer', 'body.7', *patch_arguments(),
            '--out', os.path.join(cache.work, 'timing')]
    walls, loads = [], []
    for _ in range(repeats):
        loads.append(os.getloadavg()[0])
        walls.append(round(run_cli(argv, 'reproduce_ddr')[1], 1))
    cache.save('timing', {'command': 'ddrsr ' + shlex.join(argv), 'seconds': walls, 'load_before': loads,
                          'threads': os.environ.get('OMP_NUM_THREADS', 'torch default'), 'cpus': os.cpu_count()})


# ------------------------------------------------------------------------------------- verdicts, in words
def score_text(score):
    mean, std = score['mean'], score['std']
    digits = 0 if abs(mean) >= 100 else 1 if abs(mean) >= 10 else 2 if abs(mean) >= 0.1 else 4
    return f'{mean:.{digits}f} ± {std:.{digits}f}'


def label(name):
    """A zoo model's row title, as in docs/RESULTS.md."""
    if ROOT not in sys.path:  # the repository's ddrsr, also when it is not installed
        sys.path.append(ROOT)
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


# ------------------------------------------------------------------------------------------------ report
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


def section_layers(args, layers, runs, gan_start, figures):
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
           'trunk.', '',
           '| network | GR | L1 it. | GAN it. | ' + ' | '.join(columns) + ' |',
           '|---|---|---:|---:|' + '---:|' * len(columns)]
    for model in models:
        entry = layers.get(model['key'])
        prefix = f'| {model["net"]} | {"yes" if model["gr"] else "no"} | {model["l1_iters"]} | {model["gan_iters"]} |'
        if not entry:
            out.append(prefix + ' not trained yet |' + ' — |' * (len(columns) - 1))
            continue
        rows = {row['layer']: row for row in entry['result']['layers']}
        out.append(prefix + ''.join(f' {score_text(rows[name]["chi"])} |' for name in names + OTHER_LAYERS))
    out += ['', 'Cells: DDR-CHI, mean ± std over 5 t-SNE runs (seeds 0–4), on 3 × 100 LR patches of 32×32 from the '
            '6 held-out photos (`clean`, `blur2`, `noise20`; the specs of `ddrsr/data/degradations.py`).', '']
    if layers:
        path = plot_layer_profiles(layers, models, names + OTHER_LAYERS,
                                   os.path.join(ROOT, args.work, 'layer_profiles.png'))
        figures['profiles'] = copy_figure(path, args.figures, args.doc, 'layer_profiles.png')
        out += [f'![CHI by depth]({figures["profiles"]})', '']
    out += ['**The paper\'s expectations, checked against these numbers:**', '',
            '| expectation | measured | met |', '|---|---|---|']
    expectations = paper_expectations(layers, last)
    out += [f'| {e.text} | {e.measured} | {mark(e.met)} |' for e in expectations]
    out.append('')
    for key in ('srresnet_gr', 'srresnet_nogr', 'srgan_gr', 'srgan_nogr'):
        entry = layers.get(key)
        if entry:
            plot = {row['layer']: row['plot'] for row in entry['result']['layers']}[last]
            figures[key] = copy_figure(plot, args.figures, args.doc, f'tsne_{key}_{last}.png')
            out += [f'![t-SNE of {key} at {last}]({figures[key]})', '']
    return out, expectations


def section_evolution(args, evolution, figures):
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
    header = ''.join(f' CHI, {"GR" if gr == "gr" else "no GR"} | PSNR, {"GR" if gr == "gr" else "no GR"} |'
                     for gr in keys)
    out += ['| L1 iterations |' + header, '|---:|' + '---:|---:|' * len(keys)]
    for iteration in iterations:
        cells = ''
        for gr in keys:
            row = by[gr].get(iteration)
            cells += (f' {score_text({"mean": row["chi_mean"], "std": row["chi_std"]})} | {row["psnr_clean"]:.2f} |'
                      if row else ' | |')
        out.append(f'| {iteration} |' + cells)
    out.append('')
    trends = []
    for gr in keys:
        rows = sorted(by[gr].values(), key=lambda row: row['iteration'])
        rho = spearman([r['iteration'] for r in rows], [r['chi_mean'] for r in rows])
        first, final = rows[0], rows[-1]
        label = 'GR' if gr == 'gr' else 'no GR'
        trends.append((gr, rho, first, final))
        out.append(f'- {label}: CHI {first["chi_mean"]:.3g} at {first["iteration"]} → {final["chi_mean"]:.3g} at '
                   f'{final["iteration"]}; Spearman ρ(iteration, CHI) = '
                   f'{"n/a" if rho is None else f"{rho:+.2f}"}.')
        figures[f'evolution_{gr}'] = copy_figure(evolution[gr]['result']['plot'], args.figures, args.doc,
                                                 f'evolution_{gr}.png')
    out.append('')
    out += [f'![evolution, {"GR" if gr == "gr" else "no GR"}]({figures[f"evolution_{gr}"]})' for gr in keys]
    return out + [''], trends


def section_generalization(args, generalization, figures):
    out = ['## 3. Generalization: DDR-CHI of the shipped RRDB models', '',
           'Lower DDR-CHI means the network treats clean, blurred and noisy inputs alike, which the paper reads as '
           'better generalization. Expected: RRDB (clean) ≫ RRDB (b+n) > RRDB-DDR (b+n). The default model '
           '(trained with JPEG as well) is shown for reference; it is not part of the expectation.', '']
    if not generalization:
        return out + ['Not measured yet.', ''], []
    orders = []
    tables = {layer: {row['model']: row for row in entry['result']['models']} for layer, entry in generalization.items()}
    layers = [layer for layer in RRDB_LAYERS if layer in tables]
    out += ['| model | ' + ' | '.join(('last RRDB block (' + next(iter(tables[layer].values()))['layer'] + ')')
                                      if layer == 'body' else layer for layer in layers) + ' |',
            '|---|' + '---:|' * len(layers)]
    for name in SHIPPED_RRDB + EXTRA_RRDB:
        out.append(f'| {label(name)} |' + ''.join(f' {score_text(tables[layer][name]["chi"])} |'
                                                  for layer in layers))
    out.append('')
    for layer in layers:
        order, met = generalization_order(list(tables[layer].values()))
        orders.append((layer, order, met, generalization_notes(list(tables[layer].values()))))
        out.append(f'- At `{layer}`: {order}. Expected ordering met: {mark(met)}.')
        figures[f'generalization_{layer}'] = copy_figure(generalization[layer]['result']['plot'], args.figures,
                                                         args.doc, f'generalization_{layer}.png')
    out.append('')
    out += [f'![generalization at {layer}]({figures[f"generalization_{layer}"]})' for layer in layers]
    return out + [''], orders


def section_identify(args, identify, other, figures):
    out = ['## 4. Distortion identification', '']
    if not identify:
        return out + ['Not measured yet.', ''], None
    result = identify['result']
    dataset = result['dataset']
    figures['identify'] = copy_figure(result['plot'], args.figures, args.doc, 'identification.png')
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
    ranked = sorted(((entry['accuracy'], method, layer) for layer, run in
                     ((DEFAULT_ENCODER_LAYER, identify), (IDENTIFY_OTHER_LAYER[0], other)) if run
                     for method, entry in run['result']['results'].items()), reverse=True)
    best = ranked[0]
    ddr = [r for r in ranked if r[1].startswith('ddr')]
    verdict = {'best': best, 'best_ddr': ddr[0] if ddr else None, 'met': bool(ddr) and ddr[0] == best}
    out += [f'- Paper\'s expectation: DDR features identify distortions better than BRISQUE and a supervised CNN. '
            f'Best here: `{best[1]}`' + (f' at `{best[2]}`' if best[1].startswith('ddr') else '') +
            f' ({best[0]:.3f}). Met: {mark(verdict["met"])}.', '']
    return out, verdict


def section_classification(args, runs, figures):
    """``runs``: ``{cache name: cached entry}`` of classification-vs-sr runs (one photo per class, grouped)."""
    out = ['## 5. Classification vs SR', '']
    if not runs:
        return out + ['Not measured yet.', ''], []
    verdicts = []
    for stage, entry in runs.items():
        result = entry['result']
        per_class = result.get('photos_per_class', 1)
        figures[stage] = copy_figure(result['plot'], args.figures, args.doc, f'{stage}.png')
        classes = (f'{len(result["photos"])} photos are the content classes' if per_class == 1 else
                   f'{len(result["photos"])} content classes of {per_class} photos each')
        out += [f'**{classes}**; {result["points"]} degraded LR patches ({", ".join(result["specs"])}) from photo '
                'halves the classifier never saw. A timm resnet18 is trained from scratch to tell the classes apart '
                '(held-out accuracy: ' + ', '.join(f'{k} {v:.3f}' for k, v in result['classifier_accuracy'].items()) +
                '). CHI of the same t-SNE points labelled two ways:', '',
                '| network | layer | CHI by content | CHI by degradation | clusters more by |', '|---|---|---:|---:|---|']
        for name, row in result['networks'].items():
            by = 'content' if row['chi_content']['mean'] > row['chi_degradation']['mean'] else 'degradation'
            verdicts.append((name, by, per_class))
            out.append(f'| {name} | {row["layer"]} | {score_text(row["chi_content"])} | '
                       f'{score_text(row["chi_degradation"])} | {by} |')
        out += ['', f'![content vs degradation, {classes}]({figures[stage]})', '']
    return out, verdicts


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


def write_report(args, cache, runs, gan_start):
    layers, evolution = cache.load('layers'), cache.load('evolution')
    generalization, identify = cache.load('generalization'), cache.load('identify')
    identify_other = cache.load(f'identify_{IDENTIFY_OTHER_LAYER[0]}')
    classification = {stage: entry for stage, entry in ((s, cache.load(s)) for s in CLASSIFICATION_RUNS) if entry}
    timing = cache.load('timing')
    figures = {}
    out = ['# DDR analysis at lite scale: what reproduces on 2 CPU cores', '',
           f'Generated by `{shlex.join(["python", "scripts/reproduce_ddr.py", *sys.argv[1:]])}` on '
           f'{datetime.date.today().isoformat()} from the cached results in `{args.work}`; do not edit by hand. '
           'Paper: Liu et al., *Discovering Distinctive "Semantics" in Super-Resolution Networks* (DDR). Every '
           'number below comes from a `ddrsr` command listed at the end. All networks are the lite '
           'configurations, sized to train on 2 CPU cores: they saw a few thousand iterations where the paper\'s '
           'saw hundreds of thousands, so read the absolute CHI values with that in mind.', '']
    intro = len(out)
    text, expectations = section_layers(args, layers, runs, gan_start, figures)
    out += text
    text, trends = section_evolution(args, evolution, figures)
    out += text
    text, orders = section_generalization(args, generalization, figures)
    out += text
    text, identification = section_identify(args, identify, identify_other, figures)
    out += text
    text, verdicts = section_classification(args, classification, figures)
    out += text
    out += section_timing(timing)
    out[intro:intro] = summary(expectations, trends, orders, identification, verdicts, timing)
    out += ['## Where the measurements disagree with the paper, and what was tried', '']
    out += disagreements(layers, expectations, trends, orders, verdicts, runs, identification)
    commands = [entry['command'] for entry in layers.values()]
    commands += [entry['command'] for entry in evolution.values()]
    commands += [entry['command'] for entry in generalization.values()]
    commands += [entry['command'] for entry in (identify, identify_other, *classification.values(), timing) if entry]
    trainings = [shlex.join(['python', *train_command(run)[1:]]) for run in runs.values()]
    out += ['## Commands', '', 'Training (derived option files are written by the script into '
            f'`{args.work}/options`):', '', '```bash', *trainings, '```', '', 'Measurements:', '', '```bash',
            *commands, '```', '']
    os.makedirs(os.path.dirname(os.path.abspath(args.doc)), exist_ok=True)
    with open(args.doc, 'w', encoding='utf-8') as f:
        f.write('\n'.join(out))
    return args.doc


def summary(expectations, trends, orders, identification, verdicts, timing):
    """The verdicts of every section in one table, computed from the same numbers."""
    rows = [(f'§1 {e.text}', e.met) for e in expectations]
    for gr, rho, _, _ in trends:
        if gr == 'gr':  # the paper expects DDR to strengthen in networks that learn it; no-GR MSE ones do not
            rows.append(('§2 CHI grows with training (SRResNet with GR; Spearman ρ > 0.8)',
                         None if rho is None else rho > 0.8))
    if orders:
        met = sum(bool(m) for _, _, m, _ in orders)
        rows.append((f'§3 DDR-CHI: RRDB (clean) ≫ RRDB (b+n) > RRDB-DDR (b+n) (met at {met} of {len(orders)} layers)',
                     met > 0))
    if identification:
        rows.append(('§4 DDR features identify distortions best', identification['met']))
    for network, expected in (('resnet18', 'content'), ('SR network', 'degradation')):
        found = [by for name, by, _ in verdicts if name.startswith('resnet18') == (network == 'resnet18')]
        if found:
            rows.append((f'§5 the {network} clusters more by {expected} (at {found.count(expected)} of {len(found)} '
                         'layers and class definitions)', expected in found))
    if timing:
        rows.append(('§6 `ddrsr analyze`, 3 sets × 100 patches × 5 runs, under 60 s on 2 cores',
                     float(np.median(timing['seconds'])) < 60))
    return (['## Summary', '', '| expectation (paper or issue) | met here |', '|---|---|']
            + [f'| {text} | {mark(met)} |' for text, met in rows] + [''])


def disagreements(layers, expectations, trends, orders, verdicts, runs, identification=None):
    """Bullet points for every expectation not met, with what was tried, from the cached numbers."""
    out = []
    for expectation in expectations:
        if expectation.met is False:
            tried = '; '.join(filter(None, (what_was_tried(layers, key) for key in expectation.models)))
            out.append(f'- *{expectation.text}*: measured {expectation.measured}. Tried: {tried}.')
    for gr, rho, first, final in trends:
        if gr == 'gr' and rho is not None and rho <= 0.8:
            out.append(f'- *CHI grows with training* ({"GR" if gr == "gr" else "no GR"}): Spearman ρ = {rho:+.2f}.')
    failed = [(layer, order, notes) for layer, order, met, notes in orders if met is False]
    if failed:
        out.append(f'- *RRDB (clean) ≫ RRDB (b+n) > RRDB-DDR (b+n)*: not met at {len(failed)} of {len(orders)} layers '
                   f'tried ({", ".join(f"`{layer}`" for layer, *_ in orders)}).')
        out += [f'  - `{layer}`: {order}.' for layer, order, _ in failed]
        highest = [f'`{layer}`' for layer, _, notes in failed if notes['ddr_highest']]
        if highest:
            out.append(f'  - RRDB-DDR clusters the most at {", ".join(highest)}. Its blocks are modulated by the '
                       'encoder\'s embedding of the very input (StyleMod: x·(1 + γ(e)) + β(e)), so its trunk carries '
                       'the degradation by construction. That is the design, and it works against a low DDR-CHI.')
        flat = [f'`{layer}`' for layer, _, notes in failed if notes['plain_unseparable']]
        if flat:
            out.append(f'  - Both plain RRDBs stay below CHI 1 at {", ".join(flat)}: t-SNE keeps the three versions '
                       'of each patch together, so the order of clean and b+n there is noise, not a finding.')
    if identification and not identification['met']:
        best, ddr = identification['best'], identification['best_ddr']
        out.append(f'- *DDR features identify distortions best*: `{best[1]}` is best ({best[0]:.3f}); the best DDR '
                   f'variant is `{ddr[1]}` at `{ddr[2]}` ({ddr[0]:.3f}). Tried: flattened maps and mean+std pooling, '
                   f'at `{DEFAULT_ENCODER_LAYER}` and `{IDENTIFY_OTHER_LAYER[0]}`.')
    for name, by, per_class in verdicts:
        expected = 'content' if name.startswith('resnet18') else 'degradation'
        if by != expected:
            out.append(f'- *{name} clusters by {expected}* ({per_class} photo(s) per content class): it clusters '
                       f'more by {by}.')
    unmeasured = [e for e in expectations if e.met is None]
    if unmeasured or not trends or not orders or not verdicts:
        out.append('- Not everything is measured yet (see the sections above); this list covers what is.')
    elif not out:
        out.append('- None: every expectation checked above is met.')
    return out + ['']


def what_was_tried(layers, key):
    """For network ``key``: its CHI after its "more" run, and its best layer of all measured."""
    parts = []
    more = layers.get(f'{key}_more')
    extra = {'srresnet_gr': f'{MORE_ITERATIONS} more L1', 'srresnet_nogr': f'{MORE_ITERATIONS} more L1',
             'srgan_nogr': f'{MORE_GAN_ITERATIONS} more GAN'}.get(key)
    if more:
        rows = {row['layer']: row for row in more['result']['layers']}
        last = max((name for name in rows if name.startswith('body.')), key=lambda n: int(n.split('.')[1]))
        parts.append(f'{extra or "more"} iterations ({more.get("l1_iters", "?")} L1 + {more.get("gan_iters", 0)} GAN '
                     f'in all) give CHI {chi(rows[last]):.3g} at `{last}`')
    elif extra:
        parts.append(f'the run with {extra} iterations is not trained yet')
    for entry in (layers.get(key), more):
        if entry:
            row = max(entry['result']['layers'], key=chi)
            parts.append(f'after {entry.get("l1_iters", "?")} L1 + {entry.get("gan_iters", 0)} GAN it. its best layer '
                         f'is `{row["layer"]}` (CHI {chi(row):.3g})')
    return ', '.join(parts)


# -------------------------------------------------------------------------------------------------- main
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--stages', nargs='+', default=list(STAGES), choices=STAGES)
    parser.add_argument('--redo', nargs='*', default=[], choices=STAGES, help='measure these stages again')
    parser.add_argument('--only', nargs='+', help='train only these runs: gr nogr gr_more nogr_more')
    parser.add_argument('--work', default='results/reproduce_ddr', help='cached results and derived option files')
    parser.add_argument('--doc', default='docs/ANALYSIS.md')
    parser.add_argument('--figures', default='docs/analysis', help='folder for the figures the doc shows')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    os.chdir(ROOT)
    runs, gan_start = training_runs(args.work)
    cache = Cache(args.work, args.redo)
    if 'train' in args.stages:
        stage_train(args, runs)
    if 'layers' in args.stages:
        stage_layers(cache, runs, gan_start)
    if 'evolution' in args.stages:
        stage_evolution(cache, runs, gan_start)
    if 'generalization' in args.stages:
        stage_generalization(cache)
    if 'identify' in args.stages:
        split = ['--hr', HR, '--test_fraction', '0.3', '--regions', '3', '--device', 'cpu']
        stage_single(cache, 'identify', ['identify', *split, '--out', os.path.join(args.work, 'identify')])
        layer, pool = IDENTIFY_OTHER_LAYER
        stage_single(cache, f'identify_{layer}', ['identify', *split, '--methods', 'ddr', 'ddr_stats', '--layer', layer,
                                                  '--pool', str(pool),
                                                  '--out', os.path.join(args.work, f'identify_{layer}')])
    if 'classification' in args.stages:
        for stage, extra in CLASSIFICATION_RUNS.items():
            stage_single(cache, stage, ['classification-vs-sr', '--hr', HR, *extra, '--layer', DEFAULT_ENCODER_LAYER,
                                        '--layer', IDENTIFY_OTHER_LAYER[0], '--device', 'cpu',
                                        '--out', os.path.join(args.work, stage)])
    if 'timing' in args.stages:
        stage_timing(cache)
    if 'report' in args.stages:
        print(json.dumps({'doc': write_report(args, cache, runs, gan_start)}))


if __name__ == '__main__':
    main()
