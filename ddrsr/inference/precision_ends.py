"""The convolutions at both ends of a network, kept at full precision when the rest runs in bf16 or int8.

The first convolution reads pixels and the last ones write them: one bf16 or int8 step there is an error in the
photo itself, while inside the trunk it is averaged away by the following layers. They are a few % of the
arithmetic (the HR convolution of x4plus is ~4 %). Measured on the validation crops (docs/BENCHMARKS_PRECISION.md):
the full-size model in bf16 lost 0.18 dB on clean photos with every convolution in bf16, 0.27 with only the first
kept in fp32, and 0.05 with the last two kept (with or without the first); the lite model in int8 lost 0.12 dB
(percentile ranges, convolutions only) and 0.09 with the first and the last two kept.

How many to keep is the model's to declare (``LoadedModel.bf16_fp32_ends``): under autocast an fp32 first
convolution makes the trunk's skip path fp32, so every block then casts its inputs, which cost the lite model
1.3x (96² photo) to 1.44x (256²) in time for nothing measurable; the lite default keeps none in bf16, the
full-size model the last two.

Works on any ``nn.Module``: the ends are found by running it once on a small input and recording the order in
which its ``Conv2d`` layers run (registration order need not be execution order).
"""
import functools
from typing import List, Optional, Tuple

import torch
from torch import nn

from ddrsr.defaults import FULL_PRECISION_ENDS
_MARK = '_ddrsr_fp32_island'


def convolutions_in_execution_order(network: nn.Module, probe_size: int = 32) -> List[nn.Conv2d]:
    """The network's ``Conv2d`` layers in the order one SR forward runs them (each once, first call kept).

    A DDR network (one with ``encode`` and ``use_ddr``) is probed as the upsampler runs it: the embedding first,
    then the generator with it, and only the generator's convolutions are listed.

    >>> from ddrsr.archs import RRDBNetDDR
    >>> net = RRDBNetDDR(num_feat=8, num_block=1, num_grow_ch=4, use_ddr=False)
    >>> [type(m).__name__ for m in convolutions_in_execution_order(net)][:2]
    ['Conv2d', 'Conv2d']
    """
    order: List[nn.Module] = []
    convolutions = [module for module in network.modules() if isinstance(module, nn.Conv2d)]
    parameter = next(network.parameters(), None)
    device = parameter.device if parameter is not None else torch.device('cpu')
    probe = torch.zeros(1, 3, probe_size, probe_size, device=device)
    with torch.no_grad():
        embedding: Optional[torch.Tensor] = None
        if getattr(network, 'use_ddr', False) and hasattr(network, 'encode'):
            embedding = network.encode(probe)
        hooks = [module.register_forward_hook(lambda module, args, output: order.append(module))
                 for module in convolutions]
        try:
            network(probe) if embedding is None else network(probe, embedding=embedding)
        finally:
            for hook in hooks:
                hook.remove()
    return list(dict.fromkeys(order))


def end_convolutions(network: nn.Module, ends: Tuple[int, int] = FULL_PRECISION_ENDS) -> List[nn.Conv2d]:
    """The first ``ends[0]`` and the last ``ends[1]`` convolutions of :func:`convolutions_in_execution_order`."""
    order = convolutions_in_execution_order(network)
    first, last = ends
    return list(dict.fromkeys(order[:first] + (order[-last:] if last else [])))


def _fp32_forward(forward, *args, **kwargs):
    device_type = next((a.device.type for a in args if torch.is_tensor(a)), 'cpu')
    if not torch.is_autocast_enabled(device_type):
        return forward(*args, **kwargs)
    with torch.autocast(device_type, enabled=False):
        return forward(*[a.float() if torch.is_tensor(a) and a.is_floating_point() else a for a in args], **kwargs)


def keep_fp32_under_autocast(modules: List[nn.Module]) -> None:
    """Make each module run in fp32 inside an autocast region (its inputs cast to float); outside one, and for
    any other caller of the same modules, nothing changes. Idempotent."""
    for module in modules:
        if not getattr(module, _MARK, False):
            module.forward = functools.partial(_fp32_forward, module.forward)
            setattr(module, _MARK, True)


__all__ = ['FULL_PRECISION_ENDS', 'convolutions_in_execution_order', 'end_convolutions', 'keep_fp32_under_autocast']
