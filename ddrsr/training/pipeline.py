"""Launch BasicSR's train pipeline with ddrsr's registries, option checks and a CPU-capable resume.

basicsr 1.4.2's ``load_resume_state`` maps the resume state onto ``torch.cuda.current_device()``
(so resuming fails without a GPU) and looks for ``experiments/<name>/training_states`` relative to the
current directory. :func:`load_resume_state` replaces it: it searches the run's own
``training_states`` folder and maps tensors to the device the run trains on. Under torchrun, rank 0's
choice is the group's (:mod:`ddrsr.training.distributed`), and BasicSR's ``init_dist`` is replaced by one that
also works on the CPU (gloo).
"""
import argparse
import importlib
import os
import sys

import torch

import ddrsr

ddrsr.register()  # basicsr's registries: ddrsr's archs, datasets and models
from ddrsr.training import distributed
from ddrsr.errors import DDRSRError
from ddrsr.training.options import check_option_file


def latest_state(folder):
    """Path of the ``<iter>.state`` with the highest iteration in ``folder``, or None."""
    if not os.path.isdir(folder):
        return None
    iters = []
    for name in os.listdir(folder):
        stem, ext = os.path.splitext(name)
        if ext == '.state' and stem.isdigit():
            iters.append(int(stem))
    return os.path.join(folder, f'{max(iters)}.state') if iters else None


def load_resume_state(opt):
    """Drop-in replacement for ``basicsr.train.load_resume_state`` that works on CPU-only machines."""
    from basicsr.utils import check_resume

    if opt['auto_resume']:
        path = latest_state(opt['path']['training_states'])
        if path is not None:
            opt['path']['resume_state'] = path
    else:
        path = opt['path'].get('resume_state')
    path = distributed.agree_on_resume_state(path)
    if path is None:
        return None
    opt['path']['resume_state'] = path
    device = torch.device('cuda', torch.cuda.current_device()) if opt['num_gpu'] != 0 else torch.device('cpu')
    try:
        state = torch.load(path, map_location=device, weights_only=True)  # never an unsafe unpickle
    except Exception as error:  # a pickle with code in it, a truncated file, not a checkpoint at all
        first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise DDRSRError(f'cannot load the training state {path!r} ({first}); it is corrupt or not a plain '
                         'checkpoint. Delete it (and the matching net_*.pth) to resume from the one before, or '
                         'start afresh without --auto_resume') from None
    if not isinstance(state, dict) or not isinstance(state.get('iter'), int):
        raise DDRSRError(f'{path!r} is not a BasicSR training state (no iteration count); delete it to resume '
                         'from the one before')
    check_resume(opt, state['iter'])
    return state


def prefer_cuda_prefetcher(opt):
    """On CUDA, BasicSR's CUDA prefetcher (pinned batches copied ahead on a side stream) unless the file chose.

    Returns ``opt``, changed in place: ``datasets.train.prefetch_mode: cuda`` and ``pin_memory: true`` when the
    run trains on a GPU (``num_gpu`` > 0 after BasicSR resolved ``auto``) and ``prefetch_mode`` is unset.
    """
    dataset = (opt.get('datasets') or {}).get('train')
    if dataset is not None and opt.get('num_gpu', 0) > 0 and dataset.get('prefetch_mode') is None:
        dataset['prefetch_mode'] = 'cuda'
        dataset['pin_memory'] = True
    return opt


def _with_device_defaults(parse_options):
    """BasicSR's ``parse_options``, then :func:`prefer_cuda_prefetcher`."""
    def parse(root_path, is_train=True):
        opt, args = parse_options(root_path, is_train)
        if opt['dist']:
            opt['dist_backend'] = torch.distributed.get_backend()  # logged with the options, by rank 0
        return prefer_cuda_prefetcher(opt), args

    parse.original = getattr(parse_options, 'original', parse_options)
    return parse


def _reset_basicsr_logger():
    """Let the next run set up basicsr's logger afresh, with its own log file.

    basicsr configures the 'basicsr' logger once per process; a second in-process run (tests, notebooks)
    would otherwise keep logging to the first run's file, or to no file at all.
    """
    import logging

    from basicsr.utils import logger as basicsr_logger

    basicsr_logger.initialized_logger.pop('basicsr', None)
    logger = logging.getLogger('basicsr')
    for handler in list(logger.handlers):
        handler.close()
        logger.removeHandler(handler)


def _option_path(argv):
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('-opt')
    known, _ = parser.parse_known_args(argv)
    return known.opt


def train(root_path=None, argv=None):
    """Run ``basicsr.train.train_pipeline`` for the option file named by ``-opt`` in ``argv``.

    Experiments go to ``<root_path>/experiments/<name>`` (default: the current directory, as in
    BasicSR and Real-ESRGAN when run from the repository root).
    """
    import basicsr.train

    argv = sys.argv[1:] if argv is None else list(argv)
    opt_path = _option_path(argv)
    if not opt_path:
        raise DDRSRError('usage: python ddrsr/train.py -opt options/FILE.yml [--auto_resume] [--launcher pytorch]')
    opt = check_option_file(opt_path)
    if opt['num_gpu'] not in ('auto', 0) and not torch.cuda.is_available():
        raise DDRSRError(f'{opt_path}: num_gpu is {opt["num_gpu"]} but no CUDA device is available; '
                         'set num_gpu: 0 (or auto) to train on the CPU')
    basicsr.train.load_resume_state = load_resume_state
    # parse_options calls the init_dist it imported by name; by module lookup, since in a forkserver child the
    # basicsr package need not carry its `utils` attribute.
    importlib.import_module('basicsr.utils.options').init_dist = distributed.init_dist_for(
        distributed.uses_cuda(opt['num_gpu']))
    basicsr.train.parse_options = _with_device_defaults(getattr(basicsr.train.parse_options, 'original',
                                                               basicsr.train.parse_options))
    _reset_basicsr_logger()
    saved_argv = sys.argv
    sys.argv = [saved_argv[0], *argv]  # basicsr parses its own flags (-opt, --launcher, --auto_resume, ...)
    try:
        basicsr.train.train_pipeline(os.path.abspath(root_path or os.getcwd()))
    finally:
        sys.argv = saved_argv
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()  # torchrun's processes exit without a leaked-group warning
