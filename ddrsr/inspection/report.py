"""``ddrsr inspect --report DIR``: one PNG per photo, with the photo, its estimates and a 2x2 crop grid.

The grid shows the same centre crop as input (bicubic) and as the model's result at strengths 0.5, 1 and
the recommended one. The embedding is computed once from the whole photo (its centre 512 px, as in the
Upsampler) and steered; only the crop is super-resolved, so a report costs a fraction of a full upscale.
"""
import os
import textwrap

import numpy as np
import torch
import torch.nn.functional as F

from ddrsr.utils.atomic_file import AtomicFile
from ddrsr.data.patches import centre_crop
from ddrsr.defaults import DEFAULT_EMBED_CROP
from ddrsr.inspection.inspector import describe

CROP = 48      # LR pixels of the crop shown
CONTEXT = 16   # LR pixels of context on each side while super-resolving the crop


def crop_results(model, rgb, strengths, crop=CROP, context=CONTEXT):
    """``{'input': bicubic crop, strength: SR crop}`` as ``(s*c, s*c, 3)`` float arrays in [0, 1].

    ``rgb`` is the photo ``(H, W, 3)``; the crop is its centre ``crop`` x ``crop`` LR pixels (less for a
    smaller photo), super-resolved with ``context`` pixels around it that are cut off afterwards.
    """
    device = next(model.parameters()).device  # the model's device: --device cuda, or ddrsr serve's model
    lq = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None].float().to(device)
    height, width = lq.shape[-2:]
    size_h, size_w = min(crop, height), min(crop, width)
    top, left = (height - size_h) // 2, (width - size_w) // 2
    top0, left0 = max(0, top - context), max(0, left - context)
    bottom0, right0 = min(height, top + size_h + context), min(width, left + size_w + context)
    window = lq[:, :, top0:bottom0, left0:right0]
    scale = int(model.scale)
    box = ((top - top0) * scale, (top - top0 + size_h) * scale, (left - left0) * scale, (left - left0 + size_w) * scale)

    def cut(image):
        return image[0, :, box[0]:box[1], box[2]:box[3]].clamp(0, 1).permute(1, 2, 0).cpu().numpy()

    results = {'input': cut(F.interpolate(window, scale_factor=scale, mode='bicubic', align_corners=False))}
    with torch.no_grad():
        embedding = model.encode(centre_crop(lq, DEFAULT_EMBED_CROP))
        for strength in strengths:
            results[strength] = cut(model(window, embedding=model.steer(embedding, strength)))
    return results


def write_report(path, rgb, result, model):
    """Write the report PNG for one photo ``rgb`` ``(H, W, 3)`` and its inspect ``result``; returns ``path``."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    recommended = result['recommended_strength']
    strengths = [0.5, 1.0, recommended if recommended not in (0.5, 1.0) else 1.5]  # always a 2x2 grid
    crops = crop_results(model, rgb, strengths)
    panels = [('input (bicubic)', crops['input'])] + [
        (f'strength {s:g}' + (' (recommended)' if s == recommended else ''), crops[s]) for s in strengths]
    figure = plt.figure(figsize=(12, 6.2))
    photo_axis = figure.add_axes([0.02, 0.36, 0.44, 0.58])
    photo_axis.imshow(np.clip(rgb, 0, 1))
    photo_axis.set_title(os.path.basename(result.get('file', 'photo')), fontsize=10)
    photo_axis.axis('off')
    lines = [wrapped for line in describe(result)[1:] for wrapped in textwrap.wrap(line.strip(), 72)]
    figure.text(0.02, 0.02, '\n'.join(lines), fontsize=8.5, family='monospace', va='bottom')
    for index, (title, image) in enumerate(panels):
        axis = figure.add_axes([0.49 + 0.25 * (index % 2), 0.51 - 0.48 * (index // 2), 0.24, 0.42])
        axis.imshow(image, interpolation='nearest')
        axis.set_title(title, fontsize=9)
        axis.axis('off')
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with AtomicFile(path) as f:
        figure.savefig(f, format='png', dpi=90)
    plt.close(figure)
    return path
