"""The ecosystem weights file: a ``.safetensors`` state dict with ddrsr's metadata in its header.

Beside every shipped ``.pth`` (kept for BasicSR) lies ``NAME.safetensors``: the file ddrsr loads by default
and the one to give other tools (spandrel, and through it chaiNNer and ComfyUI). Reading it runs no pickle.
Its tensors are the network's state dict, with two changes for RRDBNet-DDR networks, both undone by
:func:`from_file_tensors`:

* ``conv_last.*`` is stored as ``conv_last_ddr.*``. Tools that recognise ESRGAN by key names (spandrel looks
  for ``conv_first``, ``body.0.rdb1.conv1``, ``conv_body`` and ``conv_last``) would otherwise run the file as
  a plain ESRGAN, silently dropping the encoder and the StyleMods. With the renamed key they refuse it,
  unless ``ddrsr.integrations.spandrel`` has taught them RRDBNet-DDR. (A ``global_residual: bicubic``
  network already ends in ``conv_residual`` and needs no rename.)
* one extra tensor, :data:`ENCODER_LAYER_KEY`, holds the UTF-8 bytes of the layer the DDR encoder reads
  (e.g. ``body.7``): the weights do not imply it, and a loader that sees only the state dict (spandrel
  never reads the header) still needs it to rebuild the network.

The header's ``__metadata__`` (a ``{str: str}`` map, as safetensors requires) is written by
``ddrsr.weights.companions``; nested values are JSON strings.
"""
import json

import torch

from ddrsr.utils.atomic_file import AtomicFile
from ddrsr.errors import DDRSRError

ENCODER_LAYER_KEY = 'ddrsr.encoder_layer'
_RENAMES = {'conv_last.': 'conv_last_ddr.'}  # network key prefix -> file key prefix, DDR networks only
_DDR_MARKER = 'style_mods.'


def is_ddr_state(state):
    """Whether ``state`` (network keys) belongs to an RRDBNet-DDR (it has StyleMods)."""
    return any(key.startswith(_DDR_MARKER) for key in state)


def to_file_tensors(state, encoder_layer=None):
    """The tensors to store for network state dict ``state``; ``encoder_layer`` is required for a DDR network.

    >>> sorted(to_file_tensors({'conv_last.weight': torch.zeros(1), 'style_mods.0.b': torch.zeros(1)}, 'body.1'))
    ['conv_last_ddr.weight', 'ddrsr.encoder_layer', 'style_mods.0.b']
    """
    if not is_ddr_state(state):
        return {key: tensor.contiguous() for key, tensor in state.items()}
    if not encoder_layer:
        raise ValueError('an RRDBNet-DDR state dict needs its encoder layer name to be stored')
    tensors = {}
    for key, tensor in state.items():
        for network_prefix, file_prefix in _RENAMES.items():
            if key.startswith(network_prefix):
                key = file_prefix + key[len(network_prefix):]
        tensors[key] = tensor.contiguous()
    tensors[ENCODER_LAYER_KEY] = torch.tensor(list(encoder_layer.encode('utf-8')), dtype=torch.uint8)
    return tensors


def from_file_tensors(tensors):
    """``(network state dict, encoder layer or None)`` from stored tensors (the inverse of :func:`to_file_tensors`).

    >>> state, layer = from_file_tensors(to_file_tensors({'conv_last.b': torch.ones(1), 'style_mods.0': torch.ones(1)},
    ...                                                  'body.7'))
    >>> sorted(state), layer
    (['conv_last.b', 'style_mods.0'], 'body.7')
    """
    tensors = dict(tensors)
    marker = tensors.pop(ENCODER_LAYER_KEY, None)
    layer = bytes(marker.to(torch.uint8).tolist()).decode('utf-8') if marker is not None else None
    if not is_ddr_state(tensors):
        return tensors, layer
    state = {}
    for key, tensor in tensors.items():
        for network_prefix, file_prefix in _RENAMES.items():
            if key.startswith(file_prefix):
                key = network_prefix + key[len(file_prefix):]
        state[key] = tensor
    return state, layer


_DTYPES = {torch.float64: 'F64', torch.float32: 'F32', torch.float16: 'F16', torch.bfloat16: 'BF16',
           torch.int64: 'I64', torch.int32: 'I32', torch.int16: 'I16', torch.int8: 'I8', torch.uint8: 'U8',
           torch.bool: 'BOOL'}


def serialize(tensors, metadata):
    """safetensors bytes of ``tensors`` with header ``metadata``, the same bytes for the same input.

    ``safetensors.torch.save`` orders the header through a hash map, so its bytes change from run to run;
    re-shipping unchanged weights would then rewrite every companion in git. This writes the documented
    layout itself (8-byte little-endian header size, JSON header with sorted keys padded to 8 bytes, then
    the raw little-endian data in key order); ``safetensors.safe_open`` reads it back (tests check).
    """
    header, blobs, offset = {}, [], 0
    for key in sorted(tensors):
        tensor = tensors[key].detach().cpu().contiguous()
        blob = tensor.reshape(-1).view(torch.uint8).numpy().tobytes()
        header[key] = {'dtype': _DTYPES[tensor.dtype], 'shape': list(tensor.shape),
                       'data_offsets': [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    header['__metadata__'] = dict(sorted(metadata.items()))
    text = json.dumps(header, separators=(',', ':'), sort_keys=False).encode('utf-8')
    text += b' ' * (-len(text) % 8)
    return len(text).to_bytes(8, 'little') + text + b''.join(blobs)


def write_weights(path, state, encoder_layer=None, metadata=None):
    """Write network state dict ``state`` to ``path`` (``.safetensors``, atomically) with header ``metadata``.

    Non-string metadata values are stored as JSON. Returns ``path``.
    """
    header = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()}
    with AtomicFile(path) as f:
        f.write(serialize(to_file_tensors(state, encoder_layer), header))
    return path


def read_metadata(path):
    """The header metadata of ``path`` as ``{str: str}`` (values as stored); DDRSRError if unreadable."""
    from safetensors import safe_open

    try:
        with safe_open(path, framework='pt') as f:
            return dict(f.metadata() or {})
    except FileNotFoundError:
        raise DDRSRError(f'weights file {path!r} not found; check the path') from None
    except Exception as error:  # a truncated or non-safetensors file
        raise DDRSRError(f'cannot read {path!r} as safetensors ({error}); restore the file or pass the .pth') from None


def read_weights(path):
    """``(network state dict, encoder layer or None, metadata)`` of the ``.safetensors`` file ``path``.

    Raises:
        DDRSRError: the file is missing, truncated or not a safetensors file.
    """
    from safetensors.torch import load_file

    metadata = read_metadata(path)
    try:
        tensors = load_file(path)
    except Exception as error:
        raise DDRSRError(f'cannot read {path!r} as safetensors ({error}); restore the file or pass the .pth') from None
    state, layer = from_file_tensors(tensors)
    return state, layer, metadata


def check_encoder_layer(network, layer, path):
    """DDRSRError when ``path`` says its encoder reads ``layer`` but ``network``'s encoder reads another one."""
    expected = getattr(getattr(network, 'encoder', None), 'layer', None)
    if layer and expected and layer != expected:
        raise DDRSRError(f'{path} was trained with its encoder reading layer {layer!r}, but the network reads '
                         f'{expected!r}; use an architecture with encoder.layer: {layer}')
