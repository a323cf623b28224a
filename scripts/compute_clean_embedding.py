#!/usr/bin/env python
"""Compute a DDR model's clean embedding (the point ``--strength 0`` moves to) and write a checkpoint holding it.

    python scripts/compute_clean_embedding.py -o results/rrdb_ddr_real_x4_lite_clean.pth
    python scripts/compute_clean_embedding.py -n rrdb_ddr_real_x4_lite --weights NEW.pth -o NEW_with_clean.pth

``e_clean`` is the mean of the model's embeddings ``e = MLP(pooled encoder features)`` of clean LR patches: HR
crops from the TRAINING set (``datasets/debian_photos/train_sub``), downsampled by the named spec ``clean``
(bicubic, 8-bit). The validation photos (scripts/debian_photos_val.txt) are deliberately not used: the
strength and inspect measurements in docs/CONTROL.md and docs/INSPECT.md run on them, so they stay unseen.

The output is ``{'params_ema': state_dict}`` with the ``clean_embedding`` buffer filled, in the dtype of the
input checkpoint (fp16 stays fp16). The input is never modified. Ship the output with scripts/ship_weights.py.
Prints JSON: the file, the number of patches, the norm of e_clean and the mean distance of a patch's
embedding from it.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import ddrsr  # noqa: E402,F401  (registries)
from ddrsr.weights.checkpoint import atomic_save  # noqa: E402
from ddrsr.data.degradations import degrade_with_spec  # noqa: E402
from ddrsr.data.image_io import list_images, read_rgb, to_tensor  # noqa: E402
from ddrsr.errors import DDRSRError  # noqa: E402
from ddrsr.zoo import DEFAULT_MODEL, load_model, weights_path  # noqa: E402

TRAIN_HR = os.path.join(ROOT, 'datasets', 'debian_photos', 'train_sub')
TRAIN_META = os.path.join(ROOT, 'datasets', 'debian_photos', 'meta_info_train_sub.txt')


def clean_patches(hr_dir, meta_info, count, hr_size, scale, seed=0):
    """``(N, 3, hr_size/scale, hr_size/scale)``: centre crops of ``count`` seeded training images, degraded
    with the named spec ``clean``."""
    paths = list_images(hr_dir, meta_info)
    chosen = np.random.RandomState(seed).permutation(len(paths))[:count]
    crops = []
    for index in sorted(chosen):
        image = read_rgb(paths[index])
        height, width = image.shape[:2]
        if min(height, width) < hr_size:
            continue
        top, left = (height - hr_size) // 2, (width - hr_size) // 2
        crops.append(to_tensor(image[top:top + hr_size, left:left + hr_size]))
    if not crops:
        raise DDRSRError(f'no image in {hr_dir} is at least {hr_size} px on a side; pass a smaller --hr_size')
    hr = torch.stack(crops)
    with torch.no_grad():
        return torch.cat([degrade_with_spec(hr[i:i + 32], 'clean', scale, seed=seed + i) for i in range(0, len(hr), 32)])


def mean_embedding(model, patches, batch_size=32):
    """Mean and per-patch embeddings of ``patches`` ``(N, 3, h, w)``: ``((D,), (N, D))``."""
    with torch.no_grad():
        embeddings = torch.cat([model.encode(patches[i:i + batch_size]) for i in range(0, len(patches), batch_size)])
    return embeddings.mean(dim=0), embeddings


def checkpoint_dtype(path):
    """dtype of the floating-point tensors in the BasicSR checkpoint at ``path`` (fp16 or fp32)."""
    state = torch.load(path, map_location='cpu', weights_only=True)
    state = state.get('params_ema', state.get('params', state)) if isinstance(state, dict) else state
    dtypes = {v.dtype for v in state.values() if torch.is_tensor(v) and v.is_floating_point()}
    return torch.float16 if dtypes == {torch.float16} else torch.float32


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-n', '--model', default=DEFAULT_MODEL, help=f'zoo model (default: {DEFAULT_MODEL})')
    parser.add_argument('--weights', help='checkpoint of that model (default: the shipped file)')
    parser.add_argument('-o', '--output', required=True, help='checkpoint to write (must differ from --weights)')
    parser.add_argument('--hr', default=TRAIN_HR, help='HR training crops (default: datasets/debian_photos/train_sub)')
    parser.add_argument('--meta_info', default=TRAIN_META, help='meta-info file of --hr (default: the training list)')
    parser.add_argument('--patches', type=int, default=512, help='number of training crops used (default: 512)')
    parser.add_argument('--hr_size', type=int, default=256, help='HR crop size; LR is hr_size/scale (default: 256)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    try:
        source = args.weights or weights_path(args.model)
        if os.path.abspath(args.output) == os.path.abspath(source):
            raise DDRSRError('--output must differ from the input checkpoint (the input is never modified)')
        model = load_model(args.model, weights=args.weights)
        if not getattr(model, 'use_ddr', False):
            raise DDRSRError(f'model {args.model!r} has no DDR encoder, so it has no clean embedding')
        patches = clean_patches(args.hr, args.meta_info if args.hr == TRAIN_HR or args.meta_info != TRAIN_META
                                else None, args.patches, args.hr_size, model.scale, args.seed)
        clean, embeddings = mean_embedding(model, patches)
        model.clean_embedding.copy_(clean)
        dtype = checkpoint_dtype(source)
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in model.state_dict().items()}
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        atomic_save({'params_ema': state}, args.output)
    except DDRSRError as error:
        print(f'compute_clean_embedding: error: {error}', file=sys.stderr)
        return 2
    spread = (embeddings - clean).norm(dim=1)
    print(json.dumps({'model': args.model, 'weights': source, 'output': args.output, 'patches': len(patches),
                      'lr_size': int(patches.shape[-1]), 'dtype': str(dtype).replace('torch.', ''),
                      'clean_embedding_norm': round(float(clean.norm()), 4),
                      'mean_distance_to_clean': round(float(spread.mean()), 4)}, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
