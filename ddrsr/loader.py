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
from typing import Any, Dict, Mapping, Optional, Tuple, Union, cast

import torch
from torch import nn

from ddrsr.defaults import FULL_PRECISION_ENDS
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
        supports_tiling (bool): outputs of tiles can be blended into the whole photo's output; the Upsampler
            refuses ``tile > 0`` for a model that says False.
        supports_half (bool): runs in fp16 on CUDA; for a model that says False, ``precision='auto'`` runs fp32
            on CUDA and ``'fp16'`` is refused.
        arch (dict, optional): the ``network_g`` options it was built from (None for a wrapped module).
        weights (str, optional): the checkpoint it was loaded from.
        detail (float, optional): where between its fidelity end (0) and its base model's look (1) the weights
            were composed (``ddrsr.weights.delta``); None for a model without a detail knob.
        cpu_precision (str): what ``precision='auto'`` runs on a CPU with native bf16: ``'bf16'`` where the
            measured speed-up and quality loss allow it (the zoo entry's ``cpu_precision``), else ``'fp32'``.
        bf16_fp32_ends (tuple): how many convolutions at the start and at the end stay fp32 when the network runs
            in bf16 (``ddrsr.inference.precision_ends``). The default keeps the first and the last two, which a
            model that is unmeasured needs to be safe; a zoo entry whose measurement shows no loss without them
            declares ``(0, 0)`` and runs faster.

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
    detail: Optional[float] = None
    cpu_precision: str = 'fp32'
    bf16_fp32_ends: Tuple[int, int] = FULL_PRECISION_ENDS

    @property
    def has_clean_embedding(self) -> bool:
        """The DDR network stores a known ``clean_embedding`` (needed for strengths other than 1)."""
        return self.use_ddr and bool(getattr(self.network, 'has_clean_embedding', False))

    def to(self, device: Union[str, torch.device]) -> 'LoadedModel':
        """Move the network to ``device`` (in place, as ``nn.Module.to`` does); returns ``self``."""
        self.network.to(torch.device(device))
        return self

    @classmethod
    def from_module(cls, network: nn.Module, scale: Optional[int] = None, name: Optional[str] = None) -> 'LoadedModel':
        """Describe a ready ``nn.Module``: ``scale`` defaults to the architecture's own (``scale``/``upscale``)."""
        scale = scale or getattr(network, 'scale', None) or getattr(network, 'upscale', None)
        if not isinstance(scale, int) or isinstance(scale, bool) or scale < 1:
            raise DDRSRError(f'cannot tell the SR factor of {type(network).__name__}; pass '
                             'LoadedModel.from_module(network, scale=4)')
        tiling, half = CAPABILITIES.get(type(network).__name__, (True, True))
        return cls(network=network, scale=int(scale), name=name or getattr(network, 'model_name', None)
                   or type(network).__name__, use_ddr=bool(getattr(network, 'use_ddr', False)),
                   supports_tiling=tiling, supports_half=half)


def as_loaded(model: Union['LoadedModel', nn.Module]) -> LoadedModel:
    """``model`` as a :class:`LoadedModel`: passed through, or a plain ``nn.Module`` described."""
    return model if isinstance(model, LoadedModel) else LoadedModel.from_module(model)


def build_generator(network_opt: Mapping[str, Any]) -> nn.Module:
    """Build the network of a BasicSR ``network_g`` dict (ddrsr's architectures registered)."""
    import ddrsr.archs  # noqa: F401  (fills basicsr's ARCH_REGISTRY with ddrsr's architectures)
    from basicsr.archs import build_network

    try:
        return build_network(dict(network_opt))
    except (KeyError, TypeError, ValueError) as error:
        raise DDRSRError(f'cannot build network {network_opt.get("type")!r}: {error}') from None


def detail_state(zoo_name: str, entry: Mapping[str, Any], path: str, detail: Optional[float],
                 style: Optional[str] = None) -> Tuple[Dict[str, torch.Tensor], float]:
    """The state dict of zoo model ``zoo_name`` at ``detail``: its weights file ``path`` composed with its base.

    ``entry['detail']`` names the base zoo model (``base``), the tensors that fade (``fade``, ``style``) and the
    default detail. ``path`` may be the shipped delta file or a whole checkpoint of the same network (a training
    run's ``net_g_*.pth``): tensors both hold are interpolated, so a whole file works as well. ``style`` overrides
    the entry's ``'fade'``/``'keep'`` (for measuring the two).
    """
    from ddrsr.weights.checkpoint import load_state_dict_file
    from ddrsr.weights.delta import compose_state, read_base_reference
    from ddrsr.weights.manifest import read_manifest, sha256_file, verify_shipped
    from ddrsr.zoo import WEIGHTS_DIR, shipped_file

    knob = entry['detail']
    base_name = knob['base']
    base_path = shipped_file(base_name)
    if not os.path.isfile(base_path):
        raise DDRSRError(f'model {zoo_name!r} is stored as a difference from {base_name!r}, whose weights are missing '
                         f'at {base_path!r}; import them with python scripts/import_realesrgan.py')
    base_sha256 = None  # hashed once: the manifest's digest once the shipped base is verified against it
    if os.path.dirname(os.path.abspath(base_path)) == os.path.abspath(WEIGHTS_DIR):
        verify_shipped(base_path, WEIGHTS_DIR)
        base_sha256 = read_manifest(WEIGHTS_DIR)[os.path.basename(base_path)]
    if str(path).endswith('.safetensors'):
        from ddrsr.weights.file_format import read_metadata

        reference = read_base_reference(read_metadata(path))
        if reference and reference[1] and reference[1] != (base_sha256 or sha256_file(base_path)):
            raise DDRSRError(f'{path} was made over {reference[0]} with sha256 {reference[1][:16]}..., but '
                             f'{base_path} differs; restore the base file (git checkout weights/)')
    value = knob.get('default', 0.0) if detail is None else detail
    return compose_state(load_state_dict_file(path), load_state_dict_file(base_path), value,
                         fade=knob.get('fade', ()), style=style or knob.get('style', 'keep')), float(value)


def load(model: Union[str, Mapping[str, Any], None] = None, weights: Optional[str] = None, opt: Optional[str] = None,
         device: Union[str, torch.device] = 'cpu', name: Optional[str] = None, scale: Optional[int] = None,
         hint: Optional[str] = None, detail: Optional[float] = None, detail_style: Optional[str] = None) -> LoadedModel:
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
        detail (float, optional): for a zoo model with a detail knob (``rrdb_ddr_real_x4``), 0 (fidelity) to 1
            (its base model's look); default: the model's own default. DDRSRError for other models.
        detail_style (str, optional): ``'fade'`` or ``'keep'``, overriding how the model's own tensors (StyleMods)
            follow the detail (``ddrsr.weights.delta``); default: the model's.

    Returns:
        LoadedModel: the network frozen (``requires_grad=False``) in ``eval()`` mode on ``device``.
    """
    from ddrsr.weights.checkpoint import load_into
    from ddrsr.zoo import DEFAULT_MODEL, MODELS, WEIGHTS_DIR, model_entry, shipped_file

    if opt is not None and model is not None:
        raise DDRSRError('give a zoo model name or an option file, not both')
    if opt is not None or isinstance(model, dict):
        if opt is not None:
            from ddrsr.utils.option_file import network_options
            arch, scale = network_options(opt)
        else:
            arch = dict(cast(Mapping[str, Any], model))  # a network_g dict: the condition above
            scale = int(scale or arch.get('scale') or arch.get('upscale') or 4)
        if detail is not None:
            raise DDRSRError('--detail needs a zoo model with a detail knob (rrdb_ddr_real_x4), not an option file')
        if not weights:
            raise DDRSRError('--opt builds the architecture only; pass the checkpoint to analyse with --weights')
        if not os.path.isfile(weights):
            raise DDRSRError(f'checkpoint {weights!r} not found')
        path = weights
        network = load_into(build_generator(arch), path, hint or 'pass the matching --opt or --arch_from_model')
        name = name or os.path.splitext(os.path.basename(weights))[0]
    else:
        zoo_name = str(model) if model else DEFAULT_MODEL
        entry = model_entry(zoo_name)
        arch, scale = entry['arch'], entry['scale']
        path = weights or shipped_file(zoo_name)
        if not os.path.isfile(path):
            raise DDRSRError(f'weights for model {zoo_name!r} not found at {path!r}; the shipped files live in the '
                             "repository's weights/ folder: run from a clone (pip install -e .), or set DDRSR_WEIGHTS "
                             'to a copy of that folder (weights/README.md has the command that trains each file)')
        if weights is None and os.path.dirname(os.path.abspath(path)) == os.path.abspath(WEIGHTS_DIR):
            from ddrsr.weights.manifest import verify_shipped
            verify_shipped(path, WEIGHTS_DIR)  # before unpickling anything: a corrupt file gets a clear message
        state = None
        if entry.get('detail'):
            state, detail = detail_state(zoo_name, entry, path, detail, detail_style)
        elif detail is not None:
            knobs = sorted(n for n, e in MODELS.items() if e.get('detail'))
            raise DDRSRError(f'model {zoo_name!r} has no detail knob; --detail works with {", ".join(knobs)}')
        network = load_into(build_generator(arch), path,
                            hint or f'they are not weights for model {zoo_name!r}; pass the matching -n model name',
                            state=state)
        name = name or zoo_name
    network = network.eval().requires_grad_(False).to(torch.device(device))
    loaded = LoadedModel.from_module(network, scale=scale, name=name)
    declared = {} if opt is not None or isinstance(model, dict) else entry
    return dataclasses.replace(loaded, arch=arch, weights=path, detail=detail,
                               cpu_precision=declared.get('cpu_precision', 'fp32'),
                               bf16_fp32_ends=tuple(declared.get('bf16_fp32_ends', FULL_PRECISION_ENDS)))
