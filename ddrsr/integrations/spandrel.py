"""Teach spandrel (and so chaiNNer, ComfyUI and other spandrel users) to load ddrsr's RRDBNet-DDR files.

Importing this module registers :class:`RRDBNetDDRArch` in spandrel's ``MAIN_REGISTRY``, detected *before*
ESRGAN. Without it, spandrel would take an RRDBNet-DDR ``.pth`` for a plain ESRGAN (its keys include
ESRGAN's) and silently drop the encoder and StyleMods; ddrsr's ``.safetensors`` files are stored so that
an unpatched spandrel refuses them instead (see ``ddrsr.weights.file_format``).

Detected (:func:`detect`): any state dict with RRDBNet keys plus StyleMods (an RRDBNet-DDR) or plus
``conv_residual`` (an RRDBNet with ``global_residual: bicubic``, DDR or not), and plain RRDBNets whose growth
channels are not 32, which spandrel's ESRGAN cannot build. Other plain RRDBNet files keep loading as
spandrel's own ESRGAN. Everything is read from the keys and shapes; the DDR encoder's layer comes from the
``ddrsr.encoder_layer`` tensor of ddrsr's ``.safetensors`` (a ``.pth`` lacks it and is refused with a message).

>>> import ddrsr.integrations.spandrel  # doctest: +SKIP
>>> from spandrel import ModelLoader  # doctest: +SKIP
>>> descriptor = ModelLoader().load_from_file('weights/rrdb_ddr_real_x4_lite.safetensors')  # doctest: +SKIP
>>> descriptor.architecture.id, descriptor.scale  # doctest: +SKIP
('RRDBNetDDR', 4)
"""
from spandrel import (MAIN_REGISTRY, Architecture, ArchSupport, ImageModelDescriptor, ModelTiling,
                      SizeRequirements)
from spandrel.util import KeyCondition, get_seq_len

from ddrsr.archs.stylemod_rrdbnet_arch import RRDBNetDDR
from ddrsr.weights.checkpoint import OPTIONAL_BUFFERS
from ddrsr.errors import DDRSRError
from ddrsr.weights.file_format import from_file_tensors, is_ddr_state

ARCH_ID = 'RRDBNetDDR'
_SCALE_BY_UNSHUFFLE = {1: 4, 4: 2, 16: 1}  # conv_first input channels / image channels -> scale (RRDBNet)


def _encoder_options(state, layer):
    """``DDREncoder`` arguments read from ``encoder.*`` keys (the generator must be an SRResNet)."""
    prefix = 'encoder.generator.'
    if f'{prefix}body.0.conv1.weight' not in state or f'{prefix}upconv1.weight' not in state:
        raise DDRSRError('this RRDBNet-DDR file has an encoder generator other than SRResNet, which the spandrel '
                         'integration cannot rebuild; load it with ddrsr.loader.load(opt=..., weights=...)')
    num_feat = state[f'{prefix}conv_first.weight'].shape[0]
    if f'{prefix}upconv2.weight' in state:
        upscale = 4
    else:
        upscale = {4: 2, 9: 3}[state[f'{prefix}upconv1.weight'].shape[0] // num_feat]
    generator = {'type': 'SRResNet', 'num_in_ch': state[f'{prefix}conv_first.weight'].shape[1],
                 'num_out_ch': state[f'{prefix}conv_last.weight'].shape[0], 'num_feat': num_feat,
                 'num_block': get_seq_len(state, f'{prefix}body'), 'upscale': upscale}
    return {'generator': generator, 'layer': layer, 'embed_dim': state['encoder.mlp.2.weight'].shape[0],
            'hidden_dim': state['encoder.mlp.0.weight'].shape[0]}


def network_options(state, layer=None):
    """``RRDBNetDDR`` arguments for network state dict ``state`` (``layer``: the encoder's read layer).

    Raises:
        DDRSRError: a DDR state dict without its encoder layer (a ``.pth``), or an unsupported encoder.
    """
    use_ddr = is_ddr_state(state)
    if use_ddr and not layer:
        raise DDRSRError('this is an RRDBNet-DDR checkpoint without the name of the layer its encoder reads; '
                         'load its .safetensors (written by python scripts/ship_weights.py) instead of the .pth')
    last = 'conv_residual' if 'conv_residual.weight' in state else 'conv_last'
    num_out_ch = state[f'{last}.weight'].shape[0]
    ratio = state['conv_first.weight'].shape[1] // num_out_ch
    if ratio not in _SCALE_BY_UNSHUFFLE:
        raise DDRSRError(f'conv_first takes {state["conv_first.weight"].shape[1]} channels, which fits no '
                         'RRDBNet scale (1, 2 or 4)')
    options = {'num_in_ch': num_out_ch, 'num_out_ch': num_out_ch, 'scale': _SCALE_BY_UNSHUFFLE[ratio],
               'num_feat': state['conv_first.weight'].shape[0], 'num_block': get_seq_len(state, 'body'),
               'num_grow_ch': state['body.0.rdb1.conv1.weight'].shape[0], 'use_ddr': use_ddr,
               'global_residual': 'bicubic' if last == 'conv_residual' else None}
    if use_ddr:
        options['encoder'] = _encoder_options(state, layer)
    return options


_RRDB_KEYS = KeyCondition.has_all('conv_first.weight', 'body.0.rdb1.conv1.weight', 'conv_body.weight')


def detect(state):
    """Whether ``state`` is ddrsr's to load: an RRDBNet with StyleMods or ``conv_residual``, or one with
    ``conv_last`` whose dense blocks do not grow by 32 channels. spandrel's ESRGAN (0.4.2) always builds them
    with 32, so such a file (the lite models have 16) fails there with a size mismatch."""
    if not _RRDB_KEYS(state):
        return False
    if 'style_mods.0.to_gamma.weight' in state or 'conv_residual.weight' in state:
        return True
    return 'conv_last.weight' in state and state['body.0.rdb1.conv1.weight'].shape[0] != 32


class RRDBNetDDRArch(Architecture[RRDBNetDDR]):
    """spandrel ``Architecture`` of ddrsr's RRDBNetDDR: detection by key names, hyperparameters from shapes."""

    def __init__(self):
        super().__init__(id=ARCH_ID, name='RRDBNet-DDR (ddrsr)', detect=detect)

    def load(self, state_dict):
        state, layer = from_file_tensors(state_dict)
        options = network_options(state, layer)
        model = RRDBNetDDR(**options)
        own = model.state_dict()
        # files shipped before the clean embedding existed lack it: the network keeps its "unknown" (NaN)
        state.update({k: own[k] for k in own if k not in state and k.rsplit('.', 1)[-1] in OPTIONAL_BUFFERS})
        scale = options['scale']
        tags = [f"{options['num_feat']}nf", f"{options['num_block']}nb"]
        tags += ['DDR'] if options['use_ddr'] else []
        tags += ['bicubic-residual'] if options['global_residual'] else []
        return ImageModelDescriptor(
            model, state, architecture=self, purpose='SR' if scale > 1 else 'Restoration', tags=tags,
            supports_half=True,  # fp16 measured within 1/255 of fp32 (DESIGN.md, measured on an H200)
            supports_bfloat16=False,  # never measured
            scale=scale, input_channels=options['num_in_ch'], output_channels=options['num_out_ch'],
            size_requirements=SizeRequirements(minimum=2, multiple_of=4 // scale),
            # the embedding belongs to the whole photo; per-tile embeddings give seams (ddrsr's own Upsampler
            # computes it once and shares it across tiles)
            tiling=ModelTiling.DISCOURAGED if options['use_ddr'] else ModelTiling.SUPPORTED)


def register(registry=MAIN_REGISTRY):
    """Add RRDBNet-DDR to ``registry`` (default: spandrel's ``MAIN_REGISTRY``), detected before ESRGAN.

    Idempotent. Returns the registry's ``ArchSupport`` for RRDBNet-DDR.
    """
    registry.add(ArchSupport.from_architecture(RRDBNetDDRArch(), before=('ESRGAN',)), ignore_duplicates=True)
    return registry[ARCH_ID]


register()
