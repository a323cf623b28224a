"""Multi-process training through torchrun on the CPU (gloo) or on GPUs (NCCL).

basicsr 1.4.2's ``init_dist`` calls ``torch.cuda.set_device(RANK % torch.cuda.device_count())`` (a
ZeroDivisionError without a GPU, and the global rank instead of the node-local one on several nodes)
and always asks for NCCL, which has no CPU support. :func:`init_dist_for` returns a replacement that
picks gloo when the run trains on the CPU and NCCL with ``LOCAL_RANK``'s GPU otherwise.

:func:`agree_on_resume_state` makes ``--auto_resume`` a decision of the group: rank 0 picks the state
and every rank loads that one, so ranks that see the experiments folder differently (a lagging network
file system) fail with a clear message instead of resuming from different iterations and deadlocking.
"""
import os

import torch
import torch.distributed as dist

from ddrsr.errors import DDRSRError


def uses_cuda(num_gpu):
    """Whether a run with option ``num_gpu`` (``auto``, 0, 1, ...) trains on CUDA on this machine."""
    return num_gpu != 0 and torch.cuda.is_available()


def backend_for(use_cuda):
    """NCCL for GPUs; gloo for the CPU (NCCL cannot move CPU tensors)."""
    return 'nccl' if use_cuda else 'gloo'


def init_dist_for(use_cuda):
    """A drop-in replacement for ``basicsr.utils.dist_util.init_dist(launcher, backend='nccl', **kwargs)``.

    ``backend`` is ignored: it follows ``use_cuda`` (see :func:`backend_for`). Only ``--launcher pytorch``
    (torchrun, which sets RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT) runs on the CPU;
    ``--launcher slurm`` keeps BasicSR's GPU-only code.
    """
    from basicsr.utils.dist_util import init_dist as basicsr_init_dist

    def init_dist(launcher, backend='nccl', **kwargs):
        if launcher == 'slurm':
            if not use_cuda:
                raise DDRSRError('--launcher slurm needs GPUs; on the CPU, start the processes with torchrun and '
                                 '--launcher pytorch (e.g. srun torchrun --nnodes=$SLURM_NNODES ...)')
            return basicsr_init_dist(launcher, **kwargs)
        if launcher != 'pytorch':
            raise DDRSRError(f'unknown --launcher {launcher!r}; use pytorch (torchrun) or slurm')
        if 'RANK' not in os.environ or 'WORLD_SIZE' not in os.environ:
            raise DDRSRError('--launcher pytorch expects to be started by torchrun (RANK and WORLD_SIZE are not set); '
                             'run: torchrun --nproc_per_node=N ddrsr/train.py -opt FILE.yml --launcher pytorch')
        if use_cuda:
            # The GPU of this process on its own node: LOCAL_RANK, not the global RANK (several nodes).
            local_rank = int(os.environ.get('LOCAL_RANK', os.environ['RANK']))
            count = torch.cuda.device_count()
            if local_rank >= count:
                raise DDRSRError(f'process {local_rank} on this node has no GPU of its own ({count} visible); '
                                 f'start at most {count} processes per node (--nproc_per_node)')
            torch.cuda.set_device(local_rank)
            # As BasicSR does: DataLoader workers must not fork a process that has initialised CUDA.
            if torch.multiprocessing.get_start_method(allow_none=True) is None:
                torch.multiprocessing.set_start_method('spawn')
        dist.init_process_group(backend=backend_for(use_cuda), **kwargs)

    init_dist.original = basicsr_init_dist
    return init_dist


def is_group():
    """Whether this process is one of several started by torchrun (the process group is up)."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def agree_on_resume_state(path):
    """Rank 0's choice of resume state (a path or None), the same on every rank; checks each rank can read it.

    Without a process group this returns ``path`` unchanged.
    """
    if not is_group():
        return path
    choice = [path]
    dist.broadcast_object_list(choice, src=0)
    path = choice[0]
    visible = [path is None or os.path.isfile(path)]
    everyone = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, visible[0])  # every rank learns who cannot see it, so all stop together
    missing = [rank for rank, ok in enumerate(everyone) if not ok]
    if missing:
        raise DDRSRError(f'rank 0 resumes from {path!r} but rank(s) {missing} cannot read it; the experiments folder '
                         'must be one shared folder for every node (a network file system), or copy it there '
                         'before resuming')
    return path
