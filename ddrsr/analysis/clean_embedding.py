"""A DDR model's clean embedding: the point that ``strength 0`` moves the photo's embedding to.

``e_clean`` is the mean of the model's embeddings ``e = MLP(pooled encoder features)`` of clean LR patches:
centre crops of HR training images, downsampled by the named spec ``clean`` (bicubic, 8-bit). It is stored in
the network as the buffer ``clean_embedding``; :func:`write_clean_embedding` writes a checkpoint holding it
(``scripts/compute_clean_embedding.py`` is its command line).
"""
import os

import numpy as np
import torch

from ddrsr.data.image_io import list_images, read_rgb, to_tensor
from ddrsr.data.patches import centre_crop, degrade_chunked
from ddrsr.errors import DDRSRError
from ddrsr.weights.checkpoint import atomic_save


def clean_patches(hr_dir, meta_info, count, hr_size, scale, seed=0):
    """``(N, 3, hr_size/scale, hr_size/scale)``: centre crops of ``count`` seeded images of ``hr_dir``, degraded
    with the named spec ``clean``. Images smaller than ``hr_size`` are skipped (DDRSRError when all are)."""
    paths = list_images(hr_dir, meta_info)
    chosen = np.random.RandomState(seed).permutation(len(paths))[:count]
    crops = []
    for index in sorted(chosen):
        image = read_rgb(paths[index])
        if min(image.shape[:2]) >= hr_size:
            crops.append(to_tensor(centre_crop(image, hr_size)))
    if not crops:
        raise DDRSRError(f'no image in {hr_dir} is at least {hr_size} px on a side; pass a smaller --hr_size')
    with torch.no_grad():
        return degrade_chunked(torch.stack(crops), 'clean', scale, seed)


def mean_embedding(model, patches, batch_size=32):
    """Mean and per-patch embeddings of ``patches`` ``(N, 3, h, w)``: ``((D,), (N, D))``.

    >>> from ddrsr.archs import RRDBNetDDR
    >>> net = RRDBNetDDR(num_feat=8, num_block=1, num_grow_ch=4, encoder={'generator': {'type': 'SRResNet',
    ...     'num_feat': 8, 'num_block': 1}, 'layer': 'body.0', 'embed_dim': 4})
    >>> clean, each = mean_embedding(net, torch.rand(5, 3, 8, 8), batch_size=2)
    >>> tuple(clean.shape), tuple(each.shape)
    ((4,), (5, 4))
    """
    with torch.no_grad():
        embeddings = torch.cat([model.encode(patches[i:i + batch_size]) for i in range(0, len(patches), batch_size)])
    return embeddings.mean(dim=0), embeddings


def checkpoint_dtype(path):
    """dtype of the floating-point tensors in the checkpoint at ``path`` (BasicSR ``.pth`` or ``.safetensors``)."""
    if str(path).endswith('.safetensors'):
        from ddrsr.weights.file_format import read_weights

        state = read_weights(path)[0]
    else:
        state = torch.load(path, map_location='cpu', weights_only=True)
        state = state.get('params_ema', state.get('params', state)) if isinstance(state, dict) else state
    dtypes = {v.dtype for v in state.values() if torch.is_tensor(v) and v.is_floating_point()}
    return torch.float16 if dtypes == {torch.float16} else torch.float32


def write_clean_embedding(model_name, output, hr_dir, meta_info=None, count=512, hr_size=256, seed=0, weights=None):
    """Compute zoo model ``model_name``'s clean embedding and write ``{'params_ema': state_dict}`` holding it.

    Args:
        model_name (str): a zoo DDR model.
        output (str): the checkpoint to write (atomically); never the input.
        hr_dir, meta_info: HR training images (and their meta-info file, or None for every image).
        count, hr_size, seed: see :func:`clean_patches`.
        weights (str, optional): checkpoint of that model instead of the shipped file.

    The output keeps the input checkpoint's dtype (fp16 stays fp16); the input is never modified.

    Returns:
        dict: ``model``, ``weights`` (the input), ``output``, ``patches``, ``lr_size``, ``dtype``,
        ``clean_embedding_norm`` and ``mean_distance_to_clean`` (mean distance of a patch's embedding from it).

    Raises:
        DDRSRError: output equal to the input, a model without DDR encoder, no usable image.
    """
    from ddrsr.loader import load
    from ddrsr.zoo import model_entry, weights_path

    source = weights or weights_path(model_name)
    if os.path.abspath(output) == os.path.abspath(source):
        raise DDRSRError('--output must differ from the input checkpoint (the input is never modified)')
    # A model with a detail knob is written at its fidelity end (detail 0), the weights its delta is taken from.
    detail = 0.0 if model_entry(model_name).get('detail') else None
    loaded = load(model_name, weights=weights, detail=detail)
    model = loaded.network
    if not loaded.use_ddr:
        raise DDRSRError(f'model {model_name!r} has no DDR encoder, so it has no clean embedding')
    patches = clean_patches(hr_dir, meta_info, count, hr_size, loaded.scale, seed)
    clean, embeddings = mean_embedding(model, patches)
    model.clean_embedding.copy_(clean)
    dtype = checkpoint_dtype(source)
    state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in model.state_dict().items()}
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    atomic_save({'params_ema': state}, output)
    spread = (embeddings - clean).norm(dim=1)
    return {'model': model_name, 'weights': source, 'output': output, 'patches': len(patches),
            'lr_size': int(patches.shape[-1]), 'dtype': str(dtype).replace('torch.', ''),
            'clean_embedding_norm': round(float(clean.norm()), 4),
            'mean_distance_to_clean': round(float(spread.mean()), 4)}
