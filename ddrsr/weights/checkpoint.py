"""Reading BasicSR checkpoints safely (``weights_only=True``, never an unsafe unpickle), writing them atomically."""
import os

import torch

from ddrsr.utils.atomic_file import AtomicFile
from ddrsr.errors import DDRSRError


def load_state_dict_file(path, param_key='params_ema'):
    """Read a BasicSR checkpoint (or a ddrsr ``.safetensors``) safely and return its fp32 state dict.

    For a ``.pth``, the state dict is ``param_key``, then ``params_ema``, then ``params``.
    """
    if str(path).endswith('.safetensors'):
        from ddrsr.weights.file_format import read_weights

        return {k: v.float() for k, v in read_weights(path)[0].items()}
    try:
        checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    except FileNotFoundError:
        raise DDRSRError(f'weights file {path!r} not found; check the path') from None
    except Exception as error:  # corrupted files, pickles with code, wrong formats
        raise DDRSRError(f'cannot load weights {path!r}: {error}') from None
    if isinstance(checkpoint, dict):
        for key in (param_key, 'params_ema', 'params'):
            if key in checkpoint and isinstance(checkpoint[key], dict):
                checkpoint = checkpoint[key]
                break
    if not isinstance(checkpoint, dict) or not all(torch.is_tensor(v) for v in checkpoint.values()):
        raise DDRSRError(f'{path!r} is not a BasicSR checkpoint ({{"params_ema": state_dict}})')
    return {k[len('module.'):] if k.startswith('module.') else k: v.float() for k, v in checkpoint.items()}


def atomic_save(obj, path):
    """``torch.save(obj, path)`` that never leaves a partial file under ``path``.

    The data goes to a hidden temporary file in the same folder, is flushed to disk, and then replaces
    ``path`` in one ``os.replace``: a run killed mid-write (``kill -9``, power loss) leaves the previous
    file, or none, never a truncated one. The temporary name does not end in ``.pth``/``.state``, so
    resume logic never picks it up.
    """
    with AtomicFile(path, sync=True) as f:
        torch.save(obj, f)
    return path


#: Buffers a checkpoint may lack: the network then keeps its own value (for ``clean_embedding``, NaN =
#: "unknown", filled in by scripts/compute_clean_embedding.py). Every file shipped before the buffer lacks it.
OPTIONAL_BUFFERS = ('clean_embedding',)


def load_into(network, path, hint, state=None):
    """Load checkpoint ``path`` (or its already read ``state``) into ``network`` strictly.

    Strictly, except that a missing :data:`OPTIONAL_BUFFERS` entry keeps the network's own value. A shape or
    key mismatch becomes one DDRSRError naming the file, the first line of torch's message and ``hint``
    (what the user should pass instead). Returns ``network``.
    """
    if state is None and str(path).endswith('.safetensors'):
        from ddrsr.weights.file_format import check_encoder_layer, read_weights

        state, layer, _ = read_weights(path)
        check_encoder_layer(network, layer, path)
        state = {k: v.float() for k, v in state.items()}
    state = load_state_dict_file(path) if state is None else state
    own = network.state_dict()
    missing = {key: own[key] for key in own if key not in state and key.rsplit('.', 1)[-1] in OPTIONAL_BUFFERS}
    if missing:
        state = {**state, **missing}
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as error:
        # torch's first line is only a header; the next one names the missing/unexpected/mis-sized keys.
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        detail = (lines[1] if len(lines) > 1 else lines[0])[:200]
        raise DDRSRError(f'weights {path!r} do not match {type(network).__name__} ({detail}); {hint}') from None
    return network


def numbered_checkpoints(experiment, network='net_g'):
    """``{iteration: path}`` of a BasicSR experiment's ``models/<network>_<iteration>.pth`` files; {} if it has none.

    ``<network>_latest.pth`` is left out: it duplicates the last numbered one. The one rule every tool that walks a
    run's checkpoints uses (``ddrsr evolution``, the DDR reproduction, the release family).

    >>> numbered_checkpoints('/nonexistent/experiment')
    {}
    """
    models = os.path.join(experiment, 'models')
    if not os.path.isdir(models):
        return {}
    prefix, found = network + '_', {}
    for name in os.listdir(models):
        stem = name[len(prefix):-len('.pth')] if name.startswith(prefix) and name.endswith('.pth') else ''
        if stem.isdigit():
            found[int(stem)] = os.path.join(models, name)
    return found
