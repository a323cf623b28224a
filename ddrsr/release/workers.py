"""Child processes of the release command: training stages and calibration runs.

Children fork from a ``forkserver`` that has ddrsr, basicsr and kornia already imported, so a stage starts
in a fraction of a second instead of re-importing torch; the server itself never computes anything, so
no OpenMP pool or CUDA context is forked. Every child dies with the release command, even on ``kill -9``:
a thread waits on a pidfd of the command's process and SIGKILLs its own process when the command exits (the
fork server is not the child's "parent" that ``PR_SET_PDEATHSIG`` would watch, and it outlives the command
while children run). So no orphaned training keeps writing into a run that the next invocation resumes.
"""
import ctypes
import multiprocessing
import os
import select
import signal
import sys
import threading
import time

PRELOAD = ['ddrsr', 'basicsr.train', 'ddrsr.release.workers', 'ddrsr.release.calibrate']
_CONTEXT = []


def context():
    """The multiprocessing context children are started from (forkserver where available, else spawn).

    ``DDRSR_START_METHOD=spawn`` (``--start_method spawn``) makes every child a fresh interpreter instead: slower to
    start, for a CUDA setup that refuses to initialise in forked children.
    """
    if not _CONTEXT:
        method = os.environ.get('DDRSR_START_METHOD') or (
            'forkserver' if 'forkserver' in multiprocessing.get_all_start_methods() else 'spawn')
        # torch.cuda.is_available() in the fork server would initialise the CUDA driver, which forked children
        # cannot use; with this variable torch asks NVML instead.
        os.environ.setdefault('PYTORCH_NVML_BASED_CUDA_CHECK', '1')
        ctx = multiprocessing.get_context(method)
        if method == 'forkserver':
            ctx.set_forkserver_preload(PRELOAD)
        _CONTEXT.append(ctx)
    return _CONTEXT[0]


def die_with(pid):
    """Start a daemon thread that SIGKILLs this process as soon as process ``pid`` has exited."""
    def watch():
        try:
            handle = os.pidfd_open(pid)
            select.select([handle], [], [])
        except (AttributeError, OSError):  # no pidfd (old kernel, not Linux), or ``pid`` is already gone
            while True:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                except PermissionError:
                    pass
                time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name='die-with-parent', daemon=True).start()
    try:  # where the parent is the command itself (spawn), the kernel's parent-death signal is a second guard
        ctypes.CDLL('libc.so.6', use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _entry(parent, target, args):
    die_with(parent)
    target(*args)


def child_setup(threads, log_path):
    """Common start of every child: send output to ``log_path``, set torch's threads."""
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
    """Train one stage with ``ddrsr.training.pipeline.train`` and ``--auto_resume`` (exit code 2 on a DDRSRError)."""
    child_setup(threads, log_path)
    from ddrsr.errors import DDRSRError
    from ddrsr.training.pipeline import train

    try:
        train(root_path=root, argv=['-opt', opt_path, '--auto_resume'])
    except DDRSRError as error:
        print(f'ddrsr: error: {error}', flush=True)
        sys.exit(2)


def start(target, *args):
    """Start ``target(*args)`` in a child; returns the ``Process``."""
    process = context().Process(target=_entry, args=(os.getpid(), target, args), daemon=False)
    process.start()
    return process


def kill_alive(processes):
    """Kill every process in ``processes`` that is still running (the others of a group that failed)."""
    for process in processes:
        if process.is_alive():
            process.kill()


def log_tail(path, chars):
    """The last ``chars`` characters of the log at ``path``, or ``'(no output)'`` when there is none."""
    if not os.path.exists(path):
        return '(no output)'
    with open(path, errors='replace') as f:
        return f.read()[-chars:]
