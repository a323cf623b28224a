"""Read the convolutions of an ncnn model (``.param`` + ``.bin``) into any ``nn.Module``'s state dict.

ncnn stores a network as a text graph (``.param``) and one blob of weights (``.bin``) read layer by layer in
graph order. For a network whose only weighted layers are ``Convolution`` (ESRGAN's RRDBNet, SRResNet, VGG-style
SR networks), each layer's data is:

* the weights ``(out, in, kh, kw)``, preceded by a 4-byte little-endian tag: :data:`FP16_TAG` (fp16 values,
  padded to a multiple of 4 bytes) or 0 (raw fp32 values);
* the bias (``5=1`` in the ``.param`` line), ``out`` raw fp32 values with no tag.

:func:`read_convolutions` parses both files and fails loudly unless every byte of the ``.bin`` is consumed;
:func:`state_dict_for` lays the convolutions onto the ``nn.Conv2d`` modules of a network in the order they are
defined (``named_modules()``), checking the count and every shape. Nothing here knows about RRDBNet.

>>> param = '7767517\\n2 2\\nInput in 0 1 data\\nConvolution c0 1 1 data out 0=2 1=1 5=1 6=6\\n'
>>> blob = (0).to_bytes(4, 'little') + np.arange(6, dtype='<f4').tobytes() + np.ones(2, '<f4').tobytes()
>>> [(c.name, tuple(c.weight.shape), c.bias.tolist()) for c in read_convolutions(param, blob)]
[('c0', (2, 3, 1, 1), [1.0, 1.0])]
"""
import dataclasses
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import nn

from ddrsr.errors import DDRSRError

MAGIC = 7767517
FP16_TAG = 0x01306B47
FP32_TAG = 0
#: Layer types that carry no data in the ``.bin`` (ESRGAN-family graphs use only these besides Convolution).
WEIGHTLESS = frozenset({'Input', 'Split', 'Concat', 'Eltwise', 'BinaryOp', 'Interp', 'ReLU', 'Sigmoid', 'TanH',
                        'PixelShuffle', 'Crop', 'Padding', 'Slice', 'Reshape', 'Permute', 'Noop', 'Clip'})


@dataclasses.dataclass
class Convolution:
    """One ncnn ``Convolution``: ``weight`` ``(out, in, kh, kw)`` and ``bias`` ``(out,)`` (or None), fp32 tensors."""

    name: str
    weight: torch.Tensor
    bias: Optional[torch.Tensor]
    stored_dtype: str  # 'fp16' or 'fp32': what the .bin held


def _parse_layer(line: str, number: int) -> tuple:
    fields = line.split()
    if len(fields) < 4:
        raise DDRSRError(f'ncnn .param line {number}: expected "type name bottoms tops ...", got {line!r}')
    layer_type, name, bottoms, tops = fields[0], fields[1], int(fields[2]), int(fields[3])
    params = {}
    for item in fields[4 + bottoms + tops:]:
        key, _, value = item.partition('=')
        params[int(key)] = value
    return layer_type, name, params


def _int(params: dict, key: int, default: int) -> int:
    return int(params.get(key, default))


def read_convolutions(param_text: str, bin_bytes: bytes) -> List[Convolution]:
    """The ``Convolution`` layers of an ncnn model, in graph order, with their fp32 weights and biases.

    Args:
        param_text: the ``.param`` file's text (plain, not the binary ``.param.bin`` form).
        bin_bytes: the ``.bin`` file's bytes.

    Raises:
        DDRSRError: a malformed ``.param``, a weighted layer type other than Convolution, an unknown weight
            tag (int8 or table-quantized files), or a ``.bin`` that is too short or has bytes left over.
    """
    lines = [line.strip() for line in param_text.splitlines() if line.strip()]
    if not lines or lines[0] != str(MAGIC):
        raise DDRSRError(f'not an ncnn .param file: its first line must be {MAGIC}')
    declared = int(lines[1].split()[0]) if len(lines) > 1 else -1
    layers = lines[2:]
    if declared != len(layers):
        raise DDRSRError(f'ncnn .param declares {declared} layers but lists {len(layers)}')
    offset, convolutions = 0, []

    def take(count: int, what: str) -> bytes:
        nonlocal offset
        if offset + count > len(bin_bytes):
            raise DDRSRError(f'ncnn .bin ends early: {what} needs {count} bytes at offset {offset}, '
                             f'the file has {len(bin_bytes)}')
        chunk = bin_bytes[offset:offset + count]
        offset += count
        return chunk

    for number, line in enumerate(layers, 3):
        layer_type, name, params = _parse_layer(line, number)
        if layer_type in WEIGHTLESS:
            continue
        if layer_type != 'Convolution':
            raise DDRSRError(f'ncnn layer {name!r} has type {layer_type}, which this reader does not support '
                             '(only Convolution layers carry weights here)')
        if _int(params, 8, 0):
            raise DDRSRError(f'ncnn layer {name!r} is int8-quantized; convert the fp16/fp32 model instead')
        out_channels, kernel_w = _int(params, 0, 0), _int(params, 1, 0)
        kernel_h, size = _int(params, 11, kernel_w), _int(params, 6, 0)
        if out_channels <= 0 or kernel_w <= 0 or size % (out_channels * kernel_w * kernel_h):
            raise DDRSRError(f'ncnn layer {name!r}: weight count {size} is not out ({out_channels}) x in x '
                             f'{kernel_h} x {kernel_w}')
        in_channels = size // (out_channels * kernel_w * kernel_h)
        tag = int.from_bytes(take(4, f'the tag of {name}'), 'little')
        if tag == FP16_TAG:
            raw = take(size * 2 + (-size * 2) % 4, f'the fp16 weights of {name}')
            values, stored = np.frombuffer(raw[:size * 2], dtype='<f2').astype(np.float32), 'fp16'
        elif tag == FP32_TAG:
            values, stored = np.frombuffer(take(size * 4, f'the weights of {name}'), dtype='<f4'), 'fp32'
        else:
            raise DDRSRError(f'ncnn layer {name!r}: unsupported weight tag {tag:#010x} (fp16 {FP16_TAG:#010x} and '
                             'raw fp32 0 are supported)')
        weight = torch.from_numpy(values.copy()).reshape(out_channels, in_channels, kernel_h, kernel_w)
        bias = None
        if _int(params, 5, 0):
            bias = torch.from_numpy(np.frombuffer(take(out_channels * 4, f'the bias of {name}'), '<f4').copy())
        convolutions.append(Convolution(name, weight, bias, stored))
    if offset != len(bin_bytes):
        raise DDRSRError(f'ncnn .bin has {len(bin_bytes) - offset} bytes left over after the {len(convolutions)} '
                         'convolutions of the .param: the two files do not belong together')
    return convolutions


def conv_modules(network: nn.Module, skip: Sequence[str] = ()) -> Dict[str, nn.Conv2d]:
    """``{name: nn.Conv2d}`` of ``network`` in definition order, leaving out names under any prefix in ``skip``."""
    return {name: module for name, module in network.named_modules()
            if isinstance(module, nn.Conv2d) and not any(name == s or name.startswith(s + '.') for s in skip)}


def state_dict_for(network: nn.Module, convolutions: Sequence[Convolution],
                   skip: Sequence[str] = ()) -> Dict[str, torch.Tensor]:
    """The state dict that puts ``convolutions`` (graph order) onto ``network``'s convolutions (definition order).

    Raises:
        DDRSRError: the counts differ, or a weight/bias shape (or the presence of a bias) does not match.

    >>> net = nn.Sequential(nn.Conv2d(3, 2, 1))
    >>> conv = Convolution('c0', torch.ones(2, 3, 1, 1), torch.zeros(2), 'fp32')
    >>> sorted(state_dict_for(net, [conv]))
    ['0.bias', '0.weight']
    """
    modules = conv_modules(network, skip)
    if len(modules) != len(convolutions):
        raise DDRSRError(f'the ncnn model has {len(convolutions)} convolutions, {type(network).__name__} has '
                         f'{len(modules)}: they are different architectures')
    state = {}
    for (name, module), conv in zip(modules.items(), convolutions):
        if tuple(module.weight.shape) != tuple(conv.weight.shape):
            raise DDRSRError(f'ncnn layer {conv.name!r} has weights {tuple(conv.weight.shape)}, {name} expects '
                             f'{tuple(module.weight.shape)}: the layers are not in the same order or size')
        if (module.bias is None) != (conv.bias is None):
            raise DDRSRError(f'ncnn layer {conv.name!r} and {name} disagree on having a bias')
        state[f'{name}.weight'] = conv.weight
        if conv.bias is not None:
            state[f'{name}.bias'] = conv.bias
    return state
