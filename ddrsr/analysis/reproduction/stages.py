"""The stages of the DDR reproduction: trainings and ``ddrsr`` CLI runs, each cached as JSON, resumable.

Stages: ``train`` (the trainings of :mod:`.runs`, resumed where they stopped), ``layers`` (``ddrsr analyze`` at
conv_first, the blocks 1/4, 1/2 and last, and the up-sampling layers), ``evolution`` (``ddrsr evolution`` over the
L1-only checkpoints), ``generalization`` (the shipped RRDBs), ``identify`` (DDR vs BRISQUE vs ResNet18),
``classification`` (``ddrsr classification-vs-sr``), ``timing`` (wall time of ``ddrsr analyze``). Each keeps one
JSON file in the work folder; a stage re-run measures only what is missing, unless it is in ``redo``.
"""
import json
import os
import shlex
import subprocess
import sys

from ddrsr.utils.atomic_file import AtomicFile

from .commands import ROOT, run_cli
from .runs import (CLASSIFICATION_RUNS, DEFAULT_ENCODER_LAYER, EXTRA_RRDB, HR, IDENTIFY_OTHER_LAYER, OTHER_LAYERS,
                   RRDB_LAYERS, SHIPPED_RRDB, analysed_models, block_layers, cumulative_checkpoints, final_checkpoint,
                   patch_arguments, train_command, write_option)

STAGES = ('train', 'layers', 'evolution', 'generalization', 'identify', 'classification', 'timing', 'report')


class Cache:
    """One JSON file per stage under ``work``; a stage re-run keeps what it already measured."""

    def __init__(self, work, redo=()):
        self.work, self.redo = work, set(redo)

    def path(self, stage):
        return os.path.join(ROOT, self.work, f'{stage}.json')

    def load(self, stage, fresh=False):
        """The stage's cached dict ({} when missing, or when ``fresh`` and the stage is to be redone)."""
        if (fresh and stage in self.redo) or not os.path.isfile(self.path(stage)):
            return {}
        with open(self.path(stage)) as f:
            return json.load(f)

    def save(self, stage, data):
        """Write the stage's JSON atomically: a run killed mid-write keeps the previous cache, never half of one."""
        os.makedirs(os.path.dirname(self.path(stage)), exist_ok=True)
        with AtomicFile(self.path(stage)) as f:
            f.write(json.dumps(data, indent=2).encode())


def measure(argv):
    """Run ``ddrsr ARGV``; the cache entry ``{'command', 'result', 'seconds'}``."""
    result, wall = run_cli(argv)
    return {'command': 'ddrsr ' + shlex.join(argv), 'result': result, 'seconds': round(wall, 1)}


def stage_train(runs, only=None):
    """Train (or resume) every run whose final checkpoint is missing; ``only`` picks runs by key."""
    for key, run in runs.items():
        if only and key not in only:
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
                '--output', os.path.join(cache.work, 'layers', model['key'])]
        done[model['key']] = {**model, **measure(argv)}
        cache.save('layers', done)


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
                '--output', os.path.join(cache.work, 'evolution', gr)]
        done[gr] = measure(argv)
        cache.save('evolution', done)


def stage_generalization(cache):
    done = cache.load('generalization', fresh=True)
    for layer in RRDB_LAYERS:
        if layer in done:
            continue
        argv = ['generalization', *[item for name in SHIPPED_RRDB + EXTRA_RRDB for item in ('--model', name)],
                *(['--layer', layer] if layer != 'body' else []), *patch_arguments(),
                '--output', os.path.join(cache.work, 'generalization', layer)]
        done[layer] = measure(argv)
        cache.save('generalization', done)


def stage_single(cache, stage, argv):
    """A stage that is one CLI call (identify, classification)."""
    if cache.load(stage, fresh=True):
        return
    cache.save(stage, measure(argv))


def stage_timing(cache, repeats=3):
    """Wall time of the whole ``ddrsr analyze`` command (start-up included), 3 sets x 100 patches x 5 runs."""
    if cache.load('timing', fresh=True):
        return
    argv = ['analyze', '--model', 'srgan_encoder_x4_lite', '--layer', 'body.7', *patch_arguments(),
            '--output', os.path.join(cache.work, 'timing')]
    walls, loads = [], []
    for _ in range(repeats):
        loads.append(os.getloadavg()[0])
        walls.append(round(run_cli(argv)[1], 1))
    cache.save('timing', {'command': 'ddrsr ' + shlex.join(argv), 'seconds': walls, 'load_before': loads,
                          'threads': os.environ.get('OMP_NUM_THREADS', 'torch default'), 'cpus': os.cpu_count()})


def run_stages(stages, cache, runs, gan_start, only=None):
    """Run the measuring ``stages`` (names of :data:`STAGES`; ``report`` is :func:`.report.write_report`'s) in order.

    ``only``: train only these runs (keys of ``runs``).
    """
    if 'train' in stages:
        stage_train(runs, only)
    if 'layers' in stages:
        stage_layers(cache, runs, gan_start)
    if 'evolution' in stages:
        stage_evolution(cache, runs, gan_start)
    if 'generalization' in stages:
        stage_generalization(cache)
    if 'identify' in stages:
        split = ['--hr', HR, '--test_fraction', '0.3', '--regions', '3', '--device', 'cpu']
        stage_single(cache, 'identify', ['identify', *split, '--output', os.path.join(cache.work, 'identify')])
        layer, pool = IDENTIFY_OTHER_LAYER
        stage_single(cache, f'identify_{layer}', ['identify', *split, '--methods', 'ddr', 'ddr_stats', '--layer', layer,
                                                  '--pool', str(pool),
                                                  '--output', os.path.join(cache.work, f'identify_{layer}')])
    if 'classification' in stages:
        for stage, extra in CLASSIFICATION_RUNS.items():
            stage_single(cache, stage, ['classification-vs-sr', '--hr', HR, *extra, '--layer', DEFAULT_ENCODER_LAYER,
                                        '--layer', IDENTIFY_OTHER_LAYER[0], '--device', 'cpu',
                                        '--output', os.path.join(cache.work, stage)])
    if 'timing' in stages:
        stage_timing(cache)
