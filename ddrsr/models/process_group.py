"""ddrsr's models under torchrun: DistributedDataParallel on the CPU as well as on GPUs.

BasicSR 1.4.2's ``model_to_device`` wraps networks in ``DistributedDataParallel(device_ids=
[torch.cuda.current_device()])``, which fails on a machine without a GPU; for CPU modules DDP wants no
``device_ids`` at all. Gradients are averaged over the processes in ``backward`` (gloo or NCCL), so
every rank takes the same optimizer step and the EMA, computed on each rank, stays the same too.
"""
import torch
from torch.nn.parallel import DistributedDataParallel


class ProcessGroupMixin:
    """Place before the BasicSR base class."""

    def model_to_device(self, net):
        if not self.opt.get('dist'):
            return super().model_to_device(net)
        net = net.to(self.device)
        # BaseModel's device is plain 'cuda'; the process's own GPU is the one init_dist selected.
        device_ids = [torch.cuda.current_device()] if self.device.type == 'cuda' else None
        return DistributedDataParallel(net, device_ids=device_ids,
                                       find_unused_parameters=self.opt.get('find_unused_parameters', False))

    def test(self):
        """BasicSR's ``test`` on the bare generator.

        Validation runs on rank 0 alone. A forward through the DDP wrapper there would broadcast buffers
        (the DDR ``clean_embedding``) to ranks that are not listening, and rank 0 would wait for ever.
        """
        wrapped = self.net_g
        self.net_g = self.get_bare_model(wrapped)
        try:
            super().test()
        finally:
            self.net_g = wrapped
