"""Shipped models: name -> weights file + architecture (loaded by :func:`ddrsr.loader.load`).

A name picks an entry; ``weights`` may point the same architecture at another checkpoint (for example
a ``net_g_ema`` from your own training run). Checkpoints are BasicSR files (``{'params_ema': ...}``);
fp16 state dicts are cast back to fp32 on load. A shipped model is read from its ``.safetensors`` companion
when there is one (no pickle; see ``ddrsr.weights.file_format``), else from the ``.pth``. Shipped files (loaded by
name from ``WEIGHTS_DIR``) are checked against ``weights/SHA256SUMS`` first (see ``ddrsr.weights.manifest``).
"""
import copy
import os

from ddrsr.errors import unknown_names_error

from ddrsr.defaults import WEIGHTS_DIR  # noqa: E402,F401

_LITE_ENCODER = {'type': 'SRResNet', 'num_feat': 32, 'num_block': 8, 'upscale': 4, 'with_gr': True}
_LITE_RRDB = {'num_feat': 32, 'num_block': 6, 'num_grow_ch': 16, 'scale': 4}

_LITE_DDR = {'type': 'RRDBNetDDR', **_LITE_RRDB, 'use_ddr': True,
             'encoder': {'generator': _LITE_ENCODER, 'layer': 'body.7', 'embed_dim': 64}}
_LITE_PLAIN = {'type': 'RRDBNetDDR', **_LITE_RRDB, 'use_ddr': False}

# 'label' is the row title in reports (docs/RESULTS.md); 'options' the option file that trained the shipped file
# (its last stage), recorded in the .safetensors header and the model card (ddrsr.weights.companions).
MODELS = {
    'rrdb_ddr_real_x4_lite': {
        'file': 'rrdb_ddr_real_x4_lite.pth', 'scale': 4, 'label': 'RRDB-DDR (real photos, default)',
        'description': 'RRDBNet-DDR for real photos: blur + resize + noise + JPEG (lite, 2 CPU cores)',
        # v8 (2026-12-04): SR = bicubic + learned residual, guided by the blind encoder; v3 distilled from
        # rrdb_ddr_real_x4 on JPEG samples with an anchor to v3 elsewhere (weights/README.md).
        'arch': {**_LITE_DDR, 'global_residual': 'bicubic'}, 'options': 'options/train_rrdb_ddr_real_x4_lite_v8.yml',
        # --precision auto on a CPU with native bf16 (docs/BENCHMARKS_PRECISION.md, budget 0.05 dB per spec). Every
        # convolution runs in bf16: keeping the end convolutions fp32 bought nothing measurable (worst spec -0.002
        # against -0.008 dB without) and cost 1.44x in time on a 256² tile, the HR-resolution ones being a large
        # share of a lite network's arithmetic.
        'cpu_precision': 'bf16', 'bf16_fp32_ends': (0, 0),
    },
    'rrdb_ddr_real_x4': {
        # Real-ESRGAN's x4plus trunk, steered by the blind lite encoder through a StyleMod per block; fine-tuned
        # on 2 CPU cores with a pixel loss (trunk frozen). Ships as a delta over realesrgan_x4plus (ddrsr.weights.delta).
        'file': 'rrdb_ddr_real_x4.safetensors', 'scale': 4, 'label': 'RRDB-DDR x4plus (full size)',
        'description': "RRDBNet-DDR 64/23/32 on Real-ESRGAN's x4plus trunk, DDR-steered, fine-tuned for fidelity; "
                       '--detail walks to x4plus\'s look',
        'arch': {'type': 'RRDBNetDDR', 'num_feat': 64, 'num_block': 23, 'num_grow_ch': 32, 'scale': 4,
                 'use_ddr': True, 'encoder': {'generator': _LITE_ENCODER, 'layer': 'body.7', 'embed_dim': 64}},
        'options': 'options/train_rrdb_ddr_real_x4plus.yml',
        # detail 0: the fine-tuned weights; 1: x4plus's shared tensors, the StyleMods faded to the identity (fading
        # measured better than keeping them). Default 0.75: the lowest swept detail whose jpeg30 output is deblocked
        # (blockiness <= 1.10; scripts/detail_sweep.py, weights/README.md).
        'detail': {'base': 'realesrgan_x4plus', 'default': 0.75, 'fade': ['style_mods'], 'style': 'fade'},
        # --precision auto on a CPU with native bf16: 1.78x torch fp32, worst spec -0.05 dB (clean), within budget
        # (docs/BENCHMARKS_PRECISION.md), with the last two convolutions (the HR ones) in fp32. Compared on one 128²
        # photo (best of 3) and the validation crops: every convolution in bf16 2.16x but -0.17 dB; the first and
        # the last two fp32 1.79x, -0.05 dB; the last two only 2.00x, -0.05 dB (an fp32 first convolution makes the
        # trunk's running sum fp32, which costs casts at every block and buys nothing). int8 is outside its budget
        # and never picked.
        'cpu_precision': 'bf16', 'bf16_fp32_ends': (0, 2),
    },
    'rrdb_ddr_bn_x4_lite': {
        'file': 'rrdb_ddr_bn_x4_lite.pth', 'scale': 4, 'label': 'RRDB-DDR (b+n)',
        'description': 'RRDBNet-DDR fine-tuned from RRDB (clean) on blur + noise (lite)',
        'arch': _LITE_DDR, 'options': 'options/train_rrdb_ddr_x4_lite.yml',
    },
    'rrdb_bn_x4_lite': {
        'file': 'rrdb_bn_x4_lite.pth', 'scale': 4, 'label': 'RRDB (b+n)',
        'description': 'plain RRDBNet fine-tuned from RRDB (clean) on blur + noise (lite; the FAIG target)',
        'arch': _LITE_PLAIN, 'options': 'options/train_rrdb_x4_lite.yml',
    },
    'rrdb_clean_x4_lite': {
        'file': 'rrdb_clean_x4_lite.pth', 'scale': 4, 'label': 'RRDB (clean)',
        'description': 'plain RRDBNet on clean bicubic x4 (lite; the FAIG baseline)',
        'arch': _LITE_PLAIN, 'options': 'options/train_rrdb_clean_x4_lite.yml',
    },
    'realesrgan_x4plus': {
        # Imported, not trained here: Real-ESRGAN's RealESRGAN_x4plus (BSD-3-Clause, notice in weights/README.md),
        # written by scripts/import_realesrgan.py as fp16 safetensors only (no .pth beside it).
        'file': 'realesrgan_x4plus.safetensors', 'scale': 4, 'label': 'Real-ESRGAN x4plus',
        'description': "Real-ESRGAN's x4plus RRDBNet (64/23/32, GAN-trained on real degradations), imported unchanged",
        'arch': {'type': 'RRDBNetDDR', 'num_feat': 64, 'num_block': 23, 'num_grow_ch': 32, 'scale': 4,
                 'use_ddr': False},
        'imported': True,
    },
    'srgan_encoder_x4_lite': {
        'file': 'ddr_encoder_srgan_x4_lite.pth', 'scale': 4, 'label': 'SRGAN encoder (clean)',
        'description': 'SRGAN (SRResNet + GR) on clean bicubic data: the lite DDR encoder',
        'arch': _LITE_ENCODER, 'options': 'options/train_srgan_encoder_x4_lite.yml',
    },
    'srgan_encoder_blind_x4_lite': {
        'file': 'ddr_encoder_blind_x4_lite.pth', 'scale': 4, 'label': 'SRResNet encoder (blind)',
        'description': 'the clean SRGAN encoder fine-tuned on the blind degradation pipeline: the v3 DDR encoder',
        'arch': _LITE_ENCODER, 'options': 'options/train_srgan_encoder_x4_lite_blind.yml',
    },
}
DEFAULT_MODEL = 'rrdb_ddr_real_x4_lite'


def model_entry(name):
    """The zoo entry (a copy) for ``name``; DDRSRError listing the known names otherwise."""
    if name not in MODELS:
        raise unknown_names_error('model name', [name], sorted(MODELS))
    return copy.deepcopy(MODELS[name])


def weights_path(name):
    """The shipped file of ``name``: the BasicSR ``.pth`` for ``pretrain_network_g``, or the ``.safetensors`` of an
    imported model (which ships as that alone)."""
    return os.path.join(WEIGHTS_DIR, MODELS[name]['file'])


def shipped_file(name):
    """The file :func:`ddrsr.loader.load` reads for ``name``: the ``.safetensors`` companion when present, else the ``.pth``.

    Both hold the same weights (``ddrsr.weights.companions`` writes the companion from the ``.pth``).
    """
    path = weights_path(name)
    companion = os.path.splitext(path)[0] + '.safetensors'
    return companion if os.path.isfile(companion) else path


def ships_pth(name):
    """Whether zoo model ``name`` ships as a BasicSR ``.pth`` with companions (``.safetensors`` + card).

    Imported models (``realesrgan_x4plus``) and delta files over a base model ship as one ``.safetensors``
    with its card."""
    return MODELS[name]['file'].endswith('.pth')


def load_model(name=DEFAULT_MODEL, weights=None, device='cpu'):
    """Deprecated: ``ddrsr.loader.load(name, weights, device).network``, with ``scale`` and ``model_name`` patched on.

    Kept as a thin alias for code and model cards written before ``ddrsr.loader.load`` (which returns a
    :class:`ddrsr.loader.LoadedModel` and patches nothing); nothing in ddrsr calls it. It warns once per call site.

    Args:
        name (str): a key of :data:`MODELS`.
        weights (str, optional): checkpoint (``.pth`` or ``.safetensors``) to load instead of the shipped file.
        device (str | torch.device): where the model goes.
    """
    import warnings

    from ddrsr.loader import load

    warnings.warn('ddrsr.zoo.load_model is deprecated; use ddrsr.loader.load(name).network', DeprecationWarning,
                  stacklevel=2)
    loaded = load(name, weights=weights, device=device)
    network = loaded.network
    network.scale, network.model_name = loaded.scale, loaded.name  # the legacy attributes (see above)
    return network
