"""What the DDR reproduction measures: the trainings, the networks and layers analysed, the test sets.

The trainings are SRResNet-style generators on CLEAN bicubic x4 data, with and without global residual (GR).
Each is the DDR encoder's schedule (``options/train_srgan_encoder_x4_lite.yml``): L1 loss up to
``gan_start_iter``, then GAN + L1, so the checkpoint at ``gan_start_iter`` is the MSE-type SRResNet and the
last one the SRGAN. The GR run *is* the shipped encoder's run. ``more`` runs continue each SRResNet with the
L1 loss only, for the paper's "try more iterations" check. A run is a dict ``{'option', 'opt', 'experiment',
'total_iter'[, 'after']}``; paths are relative to the repository root (:data:`~.commands.ROOT`).
"""
import copy
import os
import sys

import yaml

from .commands import ROOT

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
    """``({key: run}, gan_start_iter)`` for the five trainings (see the module docstring for a run's keys).

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
    """The networks of section 1: ``[{key, net, gr, run, iteration, l1_iters, gan_iters, checkpoint}]``."""
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


def numbered_checkpoints(experiment):
    """``{N: path}`` of the ``net_g_<N>.pth`` files in ``experiment``/models (relative to the root); {} if none."""
    from ddrsr.weights.checkpoint import numbered_checkpoints as find

    return find(os.path.join(ROOT, experiment))


def link_checkpoints(sources, folder):
    """Links ``folder/net_g_<N>.pth`` -> ``sources[N]`` (replacing old links); returns them in iteration order.

    ``ddrsr evolution`` numbers checkpoints by their file name, so this is how a checkpoint gets its iteration.
    """
    os.makedirs(folder, exist_ok=True)
    links = []
    for iteration in sorted(sources):
        link = os.path.join(folder, f'net_g_{iteration}.pth')
        if os.path.lexists(link):
            os.remove(link)
        os.symlink(sources[iteration], link)
        links.append(link)
    return links


def cumulative_checkpoints(runs, gr, gan_start, folder):
    """Links ``net_g_<L1 iterations so far>.pth`` to the L1-only checkpoints of run ``gr`` and its "more" run.

    ``ddrsr evolution`` numbers checkpoints by their file name, so the continuation's ``net_g_500.pth``
    becomes ``net_g_<gan_start + 500>.pth`` here.
    """
    sources = {iteration: path for iteration, path in numbered_checkpoints(runs[gr]['experiment']).items()
               if iteration <= gan_start}
    sources.update({gan_start + iteration: path
                    for iteration, path in numbered_checkpoints(runs[f'{gr}_more']['experiment']).items()})
    return link_checkpoints(sources, folder)
