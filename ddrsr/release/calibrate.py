"""Calibration: how many iterations per second each stage trains at on this device, alone and side by side.

Each measurement is a child process (see :mod:`ddrsr.release.workers`) that builds the stage's model and
data loader exactly as BasicSR does, runs a few warm-up steps (``feed_data`` with on-device synthesis, then
``optimize_parameters``), and times steps for a fixed number of seconds. The encoder is timed twice: in its
pixel-loss phase and in its GAN phase, which also trains the discriminator. Then the encoder and RRDB (clean) are
timed together, one process each, with half the threads each, starting their timed windows at a barrier.
"""
import json
import os
import shutil
import sys
import tempfile
import time

from tqdm import tqdm

from ddrsr.release import workers

#: Run stages side by side only when two processes together do at least this much more work than one.
PARALLEL_GAIN = 1.1
WARMUP = {'cpu': 1, 'cuda': 5}


def _cycle(loader):
    while True:
        yield from loader


def _plain(value):
    """OrderedDicts (BasicSR's YAML loader) to dicts, so that ``yaml.safe_dump`` writes them."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def write_options(opt, path):
    """Write an option dict as YAML (atomically)."""
    import yaml

    from ddrsr.utils.atomic_file import AtomicFile

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with AtomicFile(path) as f:
        f.write(yaml.safe_dump(_plain(opt), sort_keys=False).encode())
    return path


def measure(opt, phases, threads, log_path, result_path, warmup, seconds, barrier=None):
    """Child: time ``phases`` = ``[(name, first_iteration), ...]`` of one stage; writes ``{name: it/s}`` JSON."""
    workers.child_setup(threads, log_path)
    import torch
    from basicsr.data import build_dataloader, build_dataset
    from basicsr.models import build_model
    from ddrsr import register

    register()  # ddrsr's classes in basicsr's registries
    from basicsr.utils.options import parse_options

    started = time.monotonic()
    root = tempfile.mkdtemp(prefix='ddrsr_calibrate_')
    opt_path = write_options(opt, os.path.join(root, 'options.yml'))
    sys.argv = ['calibrate', '-opt', opt_path]
    opt, _ = parse_options(root, is_train=True)
    model = build_model(opt)
    dataset_opt = opt['datasets']['train']
    loader = build_dataloader(build_dataset(dataset_opt), dataset_opt, num_gpu=opt['num_gpu'], dist=False,
                              sampler=None, seed=opt['manual_seed'])
    batches = _cycle(loader)
    cuda = opt['num_gpu'] > 0

    def sync():
        if cuda:
            torch.cuda.synchronize()

    result = {'rates': {}}
    for name, first in phases:
        iteration = first
        for _ in range(warmup):
            model.feed_data(next(batches))
            model.optimize_parameters(iteration)
            iteration += 1
        sync()
        warm = result.setdefault('warm_s', time.monotonic() - started)
        if barrier is not None:
            barrier.wait()
        begin, count = time.monotonic(), 0
        while count < 2 or time.monotonic() - begin < seconds:
            model.feed_data(next(batches))
            model.optimize_parameters(iteration)
            iteration += 1
            count += 1
            if count % 10 == 0 or time.monotonic() - begin >= seconds:
                sync()
        sync()
        result['rates'][name] = count / (time.monotonic() - begin)
        # start-up: model, data and warm-up beyond what the warm-up steps cost at the measured rate
        result.setdefault('startup_s', max(0.0, warm - warmup / result['rates'][name]))
    with open(result_path + '.tmp', 'w') as f:
        json.dump(result, f)
    os.replace(result_path + '.tmp', result_path)
    shutil.rmtree(root, ignore_errors=True)


def _run(jobs, folder, barrier=None):
    """Start ``jobs`` = ``[(tag, opt, phases, threads, warmup, seconds), ...]`` together; returns results by tag."""
    from ddrsr.errors import DDRSRError

    processes = []
    for tag, opt, phases, threads, warmup, seconds in jobs:
        result = os.path.join(folder, f'{tag}.json')
        if os.path.exists(result):
            os.remove(result)
        log = os.path.join(folder, f'{tag}.log')
        processes.append((tag, result, log, workers.start(measure, opt, phases, threads, log, result, warmup,
                                                          seconds, barrier)))
    while any(p.is_alive() for *_, p in processes):  # a child that fails leaves its partner at the barrier
        if any(p.exitcode not in (None, 0) for *_, p in processes):
            break
        time.sleep(0.05)
    results = {}
    for tag, result, log, process in sorted(processes, key=lambda job: job[3].exitcode in (None, 0)):  # failed first
        if process.exitcode is not None:
            process.join()
        if process.exitcode != 0 or not os.path.exists(result):
            workers.kill_alive(other for _, _, _, other in processes)
            tail = workers.log_tail(log, 1500)
            raise DDRSRError(f'calibration of {tag} failed (exit code {process.exitcode}); its log {log} ends '
                             f'with:\n{tail}')
        with open(result) as f:
            results[tag] = json.load(f)
    return results


def calibrate(opts, gan_start, device, threads, seconds, folder, progress=True, side_by_side=True):
    """Measure every stage alone, then the encoder and RRDB (clean) side by side.

    Args:
        opts (dict): ``{stage key: option dict}`` ready to build (no pretrained paths that do not exist yet).
        gan_start (int): the encoder's ``gan_start_iter`` in ``opts['encoder']`` (its GAN phase starts after it).
        device (str): ``cpu`` or ``cuda``.
        threads (int): CPU threads for one process alone (half each when two run side by side).
        seconds (float): length of each timed window.
        side_by_side (bool): also time two stages side by side (skipped when one lane is forced).

    Returns:
        dict: ``rates`` (it/s alone; the encoder as ``encoder`` and ``encoder_gan``), ``startup_s`` per
        stage, ``side_by_side`` (it/s of ``encoder`` and ``rrdb_clean`` together), ``gain`` (work done by
        two processes in units of one process alone) and ``lanes`` (2 when ``gain`` >= PARALLEL_GAIN).
    """
    os.makedirs(folder, exist_ok=True)
    warmup = WARMUP[device]
    rates, startup = {}, {}
    keys = list(opts)
    with tqdm(total=len(keys) + side_by_side, desc='calibrate', unit='run', disable=not progress) as bar:
        for key in keys:
            phases = [('pixel', 1)] + ([('gan', gan_start + 1)] if key == 'encoder' else [])
            result = _run([(key, opts[key], phases, threads, warmup, seconds)], folder)[key]
            rates[key] = result['rates']['pixel']
            if key == 'encoder':
                rates['encoder_gan'] = result['rates']['gan']
            startup[key] = result['startup_s']
            bar.update()
        result = {'device': device, 'threads': threads, 'seconds': seconds, 'rates': rates, 'startup_s': startup,
                  'side_by_side': None, 'gain': None, 'lanes': 1}
        if not side_by_side:
            return result
        half = max(1, threads // 2)
        pair = ('encoder', 'rrdb_clean')
        barrier = workers.context().Barrier(len(pair))
        together = _run([(f'{key}_side_by_side', opts[key], [('pixel', 1)], half, warmup, seconds) for key in pair],
                        folder, barrier)
        bar.update()
    side = {key: together[f'{key}_side_by_side']['rates']['pixel'] for key in pair}
    gain = sum(side[key] / rates[key] for key in pair)
    return {**result, 'side_by_side': side, 'gain': gain, 'lanes': 2 if gain >= PARALLEL_GAIN else 1}
