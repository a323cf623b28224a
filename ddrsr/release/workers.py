"""Child processes of the release command: training stages and calibration runs.

Children fork from a ``forkserver`` that has ddrsr, basicsr and kornia already imported, so a stage starts
in a fraction of a second instead of re-importing torch; the server itself never computes anything, so
no OpenMP pool or CUDA context is forked. Each child asks the kernel to kill it when its parent dies
(``PR_SET_PDEATHSIG``): the fork server exits when the release command does, even on ``kill -9``, so no
orphaned training keeps writing into a run that the next invocation resumes.
"""
import ctypes
import multiprocessing
import os
import signal
import sys

PRELOAD = ['ddrsr', 'basicsr.train', 'ddrsr.release.workers', 'ddrsr.release.calibrate']
_CONTEXT = []


def context():
    """The multiprocessing context children are started from (forkserver where available, else spawn)."""
    if not _CONTEXT:
        method = 'forkserver' if 'forkserver' in multiprocessing.get_all_start_methods() else 'spawn'
        ctx = multiprocessing.get_context(method)
        if method == 'forkserver':
            ctx.set_forkserver_preload(PRELOAD)
        _CONTEXT.append(ctx)
    return _CONTEXT[0]


def die_with_parent():
    """Ask Linux to SIGKILL this process when its parent exits (no-op elsewhere)."""
    try:
        libc = ctypes.CDLL('libc.so.6', use_errno=True)
        libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def child_setup(threads, log_path):
    """Common start of every child: die with the parent, send output to ``log_path``, set torch's threads."""
    die_with_parent()
    log = open(log_path, 'a', buffering=1)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = sys.stderr = log
    if threads:
        import torch
        torch.set_num_threads(int(threads))


def train_stage(opt_path, root, threads, log_path):
    """Train one stage with ``ddrsr.training.train`` and ``--auto_resume`` (exit code 2 on a DDRSRError)."""
    child_setup(threads, log_path)
    from ddrsr.errors import DDRSRError
    from ddrsr.training import train

    try:
        train(root_path=root, argv=['-opt', opt_path, '--auto_resume'])
    except DDRSRError as error:
        print(f'ddrsr: error: {error}', flush=True)
        sys.exit(2)


def start(target, *args):
    """Start ``target(*args)`` in a child; returns the ``Process``."""
    process = context().Process(target=target, args=args, daemon=False)
    process.start()
    return process
