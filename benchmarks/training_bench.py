"""Section 4: training speed of option files, through the real BasicSR/ddrsr model classes.

Each option file builds its model exactly as ``ddrsr/train.py`` would (``basicsr.models.build_model``),
on the CPU, and runs a few iterations of what BasicSR's train loop does per iteration:
``feed_data`` (which synthesizes the LQ batch with the kornia pipeline), ``optimize_parameters`` (forward,
loss, backward, optimizer step, EMA update) and ``update_learning_rate``. HR batches are random
photo-like tensors of the file's ``gt_size`` and ``batch_size_per_gpu``: reading patches from disk is
left out (BasicSR's loader worker does it in parallel), as are validation and checkpoint saving.
Weights are freshly initialised (speed does not depend on them); a DDR model gets a freshly initialised
encoder checkpoint in a temporary folder in place of ``pretrain_network_encoder``.
"""
import contextlib
import copy
import gc
import logging
import os
import re
import tempfile
import time
import warnings

import numpy as np
import torch

from benchmarks.timing import smooth_images


@contextlib.contextmanager
def _quiet_basicsr():
    """basicsr logs every network's structure at INFO; keep the benchmark's stderr readable."""
    from basicsr.utils import get_root_logger

    logger = get_root_logger()
    level = logger.level
    logger.setLevel(logging.ERROR)  # also "Params encoder.* will not be optimized": the frozen encoder, by design
    try:
        with warnings.catch_warnings():
            # basicsr steps the scheduler before the first optimizer step, as in every BasicSR run.
            warnings.filterwarnings('ignore', message=re.escape('Detected call of `lr_scheduler.step()`'))
            yield
    finally:
        logger.setLevel(level)


def _runtime_options(option_file, folder):
    """The option file as ``parse_options`` would complete it for a single-process CPU run."""
    from ddrsr.loader import build_generator

    from ddrsr.utils.option_file import load_yaml

    opt = load_yaml(option_file)
    opt.update(is_train=True, dist=False, rank=0, world_size=1, num_gpu=0, auto_resume=False)
    opt['path'] = dict(opt.get('path') or {}, pretrain_network_g=None, resume_state=None)
    # RRDBNetDDR's use_ddr defaults to True; other networks have no `encoder` option.
    encoder = opt['network_g'].get('encoder') if opt['network_g'].get('use_ddr', True) else None
    if encoder:
        path = os.path.join(folder, 'encoder.pth')
        torch.save({'params': build_generator(copy.deepcopy(encoder['generator'])).state_dict()}, path)
        opt['path']['pretrain_network_encoder'] = path
    if (opt.get('val') or {}).get('ddr_chi') is not None:
        opt['val'].pop('ddr_chi')  # a validation-time metric; not part of an iteration
    return opt


def _iterations(model, batch, first_iter, count):
    """``count`` iterations from ``first_iter``; per-iteration synthesis and step seconds."""
    synth, step = [], []
    warmup = int(model.opt['train'].get('warmup_iter', -1))
    for current in range(first_iter, first_iter + count):
        start = time.perf_counter()
        model.feed_data({'gt': batch})
        fed = time.perf_counter()
        model.optimize_parameters(current)
        model.update_learning_rate(current, warmup_iter=warmup)
        done = time.perf_counter()
        synth.append(fed - start)
        step.append(done - fed)
    return synth, step


def _phase(model, batch, first_iter, repeats, warmup):
    synth, step = _iterations(model, batch, first_iter, warmup + repeats)
    synth, step = synth[warmup:], step[warmup:]
    total = [a + b for a, b in zip(synth, step)]
    return {'s_per_iter': float(np.median(total)), 'synthesis_s': float(np.median(synth)),
            'runs_s': [round(t, 4) for t in total], 'synthesis_share': float(np.median(synth) / np.median(total))}


def bench_training(option_file, repeats=5, warmup=1, seed=0):
    """s/iter (median), s per 1k iterations, synthesis share and the estimated length of the whole run.

    SRGAN-style files with ``gan_start_iter`` are timed in both phases (pixel loss only, then GAN), and
    the run estimate weights them by their iteration counts.
    """
    from basicsr.models import build_model

    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory(prefix='ddrsr_bench_') as folder, _quiet_basicsr():
        opt = _runtime_options(option_file, folder)
        model = build_model(opt)
        train = opt['train']
        dataset = opt['datasets']['train']
        size, batch_size = int(dataset['gt_size']), int(dataset['batch_size_per_gpu'])
        batch = torch.from_numpy(smooth_images(batch_size, size, size, seed=seed)).permute(0, 3, 1, 2).contiguous()
        total_iter = int(train['total_iter'])
        gan_start = train.get('gan_start_iter')
        result = {'option_file': option_file, 'name': opt['name'], 'model_type': opt['model_type'],
                  'batch': batch_size, 'gt_size': size, 'total_iter': total_iter, 'threads': torch.get_num_threads(),
                  'phases': {}}
        pixel_iters = total_iter if gan_start is None else min(int(gan_start), total_iter)
        result['phases']['pixel' if gan_start is not None else 'train'] = _phase(model, batch, 1, repeats, warmup)
        if gan_start is not None and pixel_iters < total_iter:
            result['phases']['gan'] = _phase(model, batch, pixel_iters + 1, repeats, warmup)
        del model
        gc.collect()
    phases = result['phases']
    first = next(iter(phases.values()))
    seconds = first['s_per_iter'] * pixel_iters + phases.get('gan', first)['s_per_iter'] * (total_iter - pixel_iters)
    result.update(s_per_iter=seconds / total_iter, s_per_1k=1000 * seconds / total_iter,
                  iters_per_s=total_iter / seconds, estimated_run_h=seconds / 3600,
                  synthesis_share=max(p['synthesis_share'] for p in phases.values()))
    return result


def _use_basicsr_step(model):
    """Give ``model`` BasicSR's own step back (per-loss ``.item()``, per-tensor EMA), to measure "before"."""
    import types

    from basicsr.models.base_model import BaseModel
    from basicsr.models.sr_model import SRModel

    model.reduce_loss_dict = types.MethodType(BaseModel.reduce_loss_dict, model)
    model.model_ema = types.MethodType(BaseModel.model_ema, model)
    model.get_current_log = types.MethodType(BaseModel.get_current_log, model)
    if getattr(model, 'full_fast_step', False):
        model.optimize_parameters = types.MethodType(SRModel.optimize_parameters, model)


def bench_train_step(option_file, repeats=5, warmup=1, seed=0, step='ddrsr', overrides=None, device='cpu'):
    """ms per training iteration (synthesis + step) and host syncs per iteration for one option file.

    Args:
        step (str): ``'ddrsr'`` (losses kept on the device, foreach EMA) or ``'basicsr'`` (BasicSR's own
            step: an ``.item()`` per loss and a Python loop over the EMA tensors), for before/after figures.
        overrides (dict): ``train:`` keys to set (e.g. ``{'amp': 'bf16', 'channels_last': True}``).
        device (str): ``'cpu'`` or ``'cuda'``.

    Returns:
        dict: ``ms_per_iter`` (median), ``iters_per_s``, ``syncs_per_iter`` (outside kornia),
        ``kornia_syncs_per_iter``, ``ops_per_iter``, and the settings.
    """
    from basicsr.models import build_model

    from benchmarks.timing import count_dispatched_ops

    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory(prefix='ddrsr_bench_') as folder, _quiet_basicsr():
        opt = _runtime_options(option_file, folder)
        if device != 'cpu':
            opt['num_gpu'] = 1
        opt['train'].update(overrides or {})
        opt['train'].pop('gan_start_iter', None)  # the step of the file's main phase
        model = build_model(opt)
        if step == 'basicsr':
            _use_basicsr_step(model)
        dataset = opt['datasets']['train']
        size, batch_size = int(dataset['gt_size']), int(dataset['batch_size_per_gpu'])
        batch = torch.from_numpy(smooth_images(batch_size, size, size, seed=seed)).permute(0, 3, 1, 2).contiguous()
        batch = batch.to(model.device)

        def iteration(current=[0]):
            current[0] += 1
            model.feed_data({'gt': batch})
            model.optimize_parameters(current[0])

        for _ in range(warmup):
            iteration()
        synchronize = torch.cuda.synchronize if model.device.type == 'cuda' else (lambda: None)
        synchronize()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            iteration()
            synchronize()
            times.append(time.perf_counter() - start)
        counts = count_dispatched_ops(iteration)
    gc.collect()
    ms = 1000 * float(np.median(times))
    return {'option_file': option_file, 'step': step, 'device': device, 'overrides': dict(overrides or {}),
            'batch': batch_size, 'gt_size': size, 'threads': torch.get_num_threads(), 'ms_per_iter': ms,
            'iters_per_s': 1000 / ms, 'runs_ms': [round(1000 * t, 1) for t in times],
            'syncs_per_iter': counts['syncs'], 'kornia_syncs_per_iter': counts['kornia_syncs'],
            'ops_per_iter': counts['ops']}
