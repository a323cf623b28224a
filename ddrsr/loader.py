"""One loader for every network ddrsr runs, and the typed descriptor it returns (as spandrel does).

:func:`load` takes a zoo name (its shipped weights, or ``weights``), a checkpoint with a BasicSR option file
(its ``network_g``), or a ``network_g`` dict with a checkpoint, and returns a :class:`LoadedModel`: the
network (frozen, ``eval()``, on ``device``) with what the tools need to know about it declared beside it --
scale, name, whether it has a DDR encoder, tiling and fp16 support. Nothing is patched onto the module.

The upsampler, the analysis commands (analyze, generalization, evolution), FAIG and the benchmarks all load
through here. Any submodule of ``loaded.network`` is addressable by its ``named_modules()`` name, e.g.
``encoder.generator.body.7`` inside an RRDBNet-DDR.
"""
import dataclasses
import os
from typing import Optional

import torch
from torch import nn

from ddrsr.errors import DDRSRError

# Architecture type -> (supports_tiling, supports_half). Tiling: every ddrsr network is convolutional; an
# RRDBNet-DDR tiles with one embedding per photo (the Upsampler computes it once). fp16: measured within 1/255
# of fp32 on CUDA (docs/DESIGN.md); on the CPU the Upsampler runs fp32.
CAPABILITIES = {'RRDBNetDDR': (True, True), 'SRResNet': (True, True), 'MSRResNet': (True, True),
                'RRDBNet': (True, True)}


@dataclasses.dataclass(eq=False)
class LoadedModel:
    """A network and what is known about it.

    Attributes:
        network (nn.Module): ``(B, 3, H, W) -> (B, 3, scale*H, scale*W)``; a DDR network also takes
            ``embedding=`` ``(B, D)`` and has ``encode``: ``(B, 3, H, W) -> (B, D)``.
        scale (int): the SR factor.
        name (str): the zoo name, or the checkpoint's file name, or the class name.
        use_ddr (bool): the network has a DDR encoder (``encode``, ``steer``, ``clean_embedding``).
        supports_tiling (bool): outputs of tiles can be blended into the whole photo's output.
        supports_half (bool): runs in fp16 on CUDA.
        arch (dict, optional): the ``network_g`` options it was built from (None for a wrapped module).
        weights (str, optional): the checkpoint it was loaded from.

    >>> from ddrsr.archs import RRDBNetDDR
    >>> loaded = LoadedModel.from_module(RRDBNetDDR(num_feat=8, num_block=1, num_grow_ch=4, use_ddr=False))
    >>> loaded.scale, loaded.name, loaded.use_ddr
    (4, 'RRDBNetDDR', False)
    >>> loaded.network(torch.zeros(1, 3, 8, 8)).shape
    torch.Size([1, 3, 32, 32])
    """

    network: nn.Module
    scale: int
    name: str
    use_ddr: bool = False
    supports_tiling: bool = True
    supports_half: bool = True
    arch: Optional[dict] = None
    weights: Optional[str] = None

    @property
    def has_clean_embedding(self):
        """The DDR network stores a known ``clean_embedding`` (needed for strengths other than 1)."""
        return self.use_ddr and bool(getattr(self.network, 'has_clean_embedding', False))

    def to(self, device):
        """Move the network to ``device`` (in place, as ``nn.Module.to`` does); returns ``self``."""
        self.network.to(torch.device(device))
        return self

    @classmethod
    def from_module(cls, network, scale=None, name=None):
        """Describe a ready ``nn.Module``: ``scale`` defaults to the architecture's own (``scale``/``upscale``)."""
        scale = scale or getattr(network, 'scale', None) or getattr(network, 'upscale', None)
        if not isinstance(scale, int) or isinstance(scale, bool) or scale < 1:
            raise DDRSRError(f'cannot tell the SR factor of {type(network).__name__}; pass '
                             'LoadedModel.from_module(network, scale=4)')
        tiling, half = CAPABILITIES.get(type(network).__name__, (True, True))
        return cls(network=network, scale=int(scale), name=name or getattr(network, 'model_name', None)
                   or type(network).__name__, use_ddr=bool(getattr(network, 'use_ddr', False)),
                   supports_tiling=tiling, supports_half=half)


def as_loaded(model):
    """``model`` as a :class:`LoadedModel`: passed through, or a plain ``nn.Module`` described."""
    return model if isinstance(model, LoadedModel) else LoadedModel.from_module(model)


def build_generator(network_opt):
    """Build the network of a BasicSR ``network_g`` dict (ddrsr's architectures registered)."""
    import ddrsr  # noqa: F401  (fills basicsr's ARCH_REGISTRY with ddrsr's architectures)
    from basicsr.archs import build_network

    try:
        return build_network(dict(network_opt))
    except (KeyError, TypeError, ValueError) as error:
        raise DDRSRError(f'cannot build network {network_opt.get("type")!r}: {error}') from None


def load(model=None, weights=None, opt=None, device='cpu', name=None, scale=None, hint=None):
    """Build a network, load its weights, and describe it.

    Args:
        model (str | dict, optional): a zoo name (``ddrsr.zoo.MODELS``; default: the shipped default model
            when neither ``opt`` nor a dict is given), or a BasicSR ``network_g`` dict.
        weights (str, optional): checkpoint (``.pth`` or ``.safetensors``); with a zoo name it replaces the
            shipped file, with ``opt`` or a dict it is required.
        opt (str, optional): a BasicSR option file whose ``network_g`` (and ``scale``) builds the architecture.
        device (str | torch.device): where the network goes.
        name (str, optional): the descriptor's name (default: the zoo name, else the checkpoint's file stem).
        scale (int, optional): SR factor for a ``network_g`` dict (default: its ``scale``/``upscale``, else 4).
        hint (str, optional): what to tell the user when the checkpoint does not fit the architecture.

    Returns:
        LoadedModel: the network frozen (``requires_grad=False``) in ``eval()`` mode on ``device``.
    """
    from ddrsr.weights.checkpoint import load_into
    from ddrsr.zoo import DEFAULT_MODEL, WEIGHTS_DIR, model_entry, shipped_file

    if opt is not None and model is not None:
        raise DDRSRError('give a zoo model name or an option file, not both')
    if opt is not None or isinstance(model, dict):
        if opt is not None:
            from ddrsr.utils.option_file import network_options
            arch, scale = network_options(opt)
        else:
            arch = dict(model)
            scale = int(scale or arch.get('scale') or arch.get('upscale') or 4)
        if not weights:
            raise DDRSRError('--opt builds the architecture only; pass the checkpoint to analyse with --weights')
        if not os.path.isfile(weights):
            raise DDRSRError(f'checkpoint {weights!r} not found')
        path = weights
        network = load_into(build_generator(arch), path, hint or 'pass the matching --opt or --arch-from-model')
        name = name or os.path.splitext(os.path.basename(weights))[0]
    else:
        zoo_name = model or DEFAULT_MODEL
        entry = model_entry(zoo_name)
        arch, scale = entry['arch'], entry['scale']
        path = weights or shipped_file(zoo_name)
        if not os.path.isfile(path):
            raise DDRSRError(f'weights for model {zoo_name!r} not found at {path!r}; the shipped files live in '
                             'weights/ (see weights/README.md for the command that trains them)')
        if weights is None and os.path.dirname(os.path.abspath(path)) == os.path.abspath(WEIGHTS_DIR):
            from ddrsr.weights.manifest import verify_shipped
            verify_shipped(path, WEIGHTS_DIR)  # before unpickling anything: a corrupt file gets a clear message
        from basicsr.archs import build_network
        network = load_into(build_network(arch), path,
                            hint or f'they are not weights for model {zoo_name!r}; pass the matching -n model name')
        name = name or zoo_name
    network = network.eval().requires_grad_(False).to(torch.device(device))
    loaded = LoadedModel.from_module(network, scale=scale, name=name)
    return dataclasses.replace(loaded, arch=arch, weights=path)
