"""Classification vs SR: a classifier's features cluster by content, an SR network's by degradation.

A timm resnet18 learns to tell the content classes apart (a class = one source photo, or a group of
several photos) from clean LR patches of one half of each photo. Patches from the other half, each degraded with every named spec, then go
through the classifier and through the SR network. On the same t-SNE embedding CHI is computed twice:
with the points labelled by content and labelled by degradation (Liu et al., "Discovering Distinctive
'Semantics' in Super-Resolution Networks"). Expected: classifier CHI(content) >> CHI(degradation), SR
network the reverse.
"""
import os
import sys

import numpy as np
import torch
from tqdm import tqdm

from ddrsr.data.degradations import parse_spec
from ddrsr.data.image_io import list_images
from ddrsr.data.patches import degrade_chunked
from ddrsr.errors import DDRSRError

from .classifiers import predict, train_resnet18
from .distortions import load_photo
from .features import extract_features
from .projection import tsne_runs
from .scores import format_score, score_runs

def _to_tensor(crops):
    return torch.from_numpy(np.ascontiguousarray(np.stack(crops).transpose(0, 3, 1, 2))).float().div_(255.0)


def _photo_patches(image, hr_size, num_test, num_train, rng):
    """Test patches: seeded cells of a grid on the right half; training patches: random crops of the left half."""
    height, width = image.shape[:2]
    half = width // 2
    rows, cols = height // hr_size, (width - half) // hr_size
    if rows * cols < num_test or half < hr_size:
        raise DDRSRError(f'a photo of {width}x{height} (after resizing) has {rows * cols} test cells of {hr_size} px '
                         f'in its right half, fewer than --patches {num_test}; use fewer --patches, a smaller '
                         '--patch or a larger --short_side')
    cells = rng.choice(rows * cols, size=num_test, replace=False)
    test = [image[r * hr_size:(r + 1) * hr_size, half + c * hr_size:half + (c + 1) * hr_size]
            for r, c in (divmod(int(cell), cols) for cell in sorted(cells))]
    tops = rng.integers(0, height - hr_size + 1, num_train)
    lefts = rng.integers(0, half - hr_size + 1, num_train)
    train = [image[t:t + hr_size, left:left + hr_size] for t, left in zip(tops, lefts)]
    return test, train


@torch.no_grad()
def build_content_sets(hr_dir, specs, meta_info=None, photos=8, patch=32, scale=4, patches=16, train_patches=256,
                       train_specs=('clean', ), short_side=768, seed=0, photos_per_class=1, progress=True):
    """LR patches labelled by content class and degradation (spec), plus the classifier's training patches.

    Args:
        photos (int): number of content classes. Class ``c`` is made of ``photos_per_class`` consecutive
            photos of ``hr_dir``/``meta_info`` (1: each photo is its own class). With several photos per
            class, "content" means more than one photo's colours and textures, as a semantic class does.
        specs (list[str]): named degradations of the test patches (>= 2).
        patch (int): LR patch size; HR patches are ``patch * scale``.
        patches (int): test patches per photo (right half); ``train_patches`` random crops of the left half.
        train_specs (list[str]): degradations of the training patches (default: clean only, as an image
            classifier trained on clean photos).

    Returns:
        dict: ``lr`` ``(M, 3, p, p)`` with ``content`` and ``degradation`` ``(M,)`` labels (M = photos x
        photos_per_class x patches x specs), ``train_lr`` ``(T, 3, p, p)`` with ``train_content`` ``(T,)``,
        ``photos`` (one name per class, its photos joined by ``+``) and ``specs`` names.
    """
    spec_names = [parse_spec(spec).name for spec in specs]
    train_names = [parse_spec(spec).name for spec in train_specs]
    if len(spec_names) < 2 or len(set(spec_names)) != len(spec_names):
        raise DDRSRError(f'--specs needs at least two different degradations, got {", ".join(spec_names) or "none"}')
    if photos_per_class < 1:
        raise DDRSRError(f'--photos_per_class must be at least 1, got {photos_per_class}')
    if photos < 2:
        raise DDRSRError(f'content classes need at least two photos (--photos 2 or more), got {photos}')
    paths = list_images(hr_dir, meta_info)[:photos * photos_per_class]
    if len(paths) < photos * photos_per_class:
        raise DDRSRError(f'{photos} content classes of {photos_per_class} photo(s) need {photos * photos_per_class} '
                         f'photos, found {len(paths)}; lower --photos or --photos_per_class')
    if patch < 1 or patches < 1 or train_patches < 2:
        raise DDRSRError('--patch and --patches must be positive and --train_patches at least 2')
    test_hr, train_hr, content, train_content = [], [], [], []
    for index, path in enumerate(tqdm(paths, desc='cut patches', unit='photo', file=sys.stderr, disable=not progress)):
        test, train = _photo_patches(load_photo(path, short_side), patch * scale, patches, train_patches,
                                     np.random.default_rng([seed, index]))
        test_hr += test
        train_hr += train
        content += [index // photos_per_class] * len(test)
        train_content += [index // photos_per_class] * len(train)
    test_hr, train_hr = _to_tensor(test_hr), _to_tensor(train_hr)
    lr = torch.cat([degrade_chunked(test_hr, name, scale, seed) for name in spec_names])
    # Each training spec degrades all training crops; the classifier sees every content under each.
    train_lr = torch.cat([degrade_chunked(train_hr, name, scale, seed + 1_000_003) for name in train_names])
    return {'lr': lr, 'content': np.tile(content, len(spec_names)),
            'degradation': np.repeat(np.arange(len(spec_names)), len(content)),
            'train_lr': train_lr, 'train_content': np.tile(train_content, len(train_names)),
            'photos': ['+'.join(name.replace('\\', '/').split('/')[-1] for name in paths[i:i + photos_per_class])
                       for i in range(0, len(paths), photos_per_class)], 'specs': spec_names}


def chi_by_labelling(features, content, degradation, runs=5, perplexity=None, progress=True, desc='t-SNE'):
    """One set of t-SNE runs, scored twice: CHI with content labels and with degradation labels.

    Returns:
        dict: ``{'content': scores, 'degradation': scores, 'embeddings': [...]}`` (scores as in ``score_runs``).
    """
    embeddings, perplexity = tsne_runs(features, runs, perplexity, progress=progress, desc=desc)
    return {'content': score_runs(embeddings, content), 'degradation': score_runs(embeddings, degradation),
            'embeddings': embeddings, 'perplexity': perplexity}


def compare_networks(sets, networks, runs=5, perplexity=None, device='cpu', progress=True):
    """CHI by content and by degradation for each ``(network, layer)`` on the same patches.

    Args:
        sets (dict): from :func:`build_content_sets`.
        networks (dict): ``{name: (nn.Module, layer name)}``; any module taking ``(B, 3, p, p)``.

    Returns:
        dict: ``{name: {'layer', 'dim', 'content': scores, 'degradation': scores, 'embeddings'}}``.
    """
    results = {}
    for name, (network, layer) in networks.items():
        features = extract_features(network, layer, sets['lr'], device=device, progress=progress,
                                    desc=f'features {name}:{layer}')
        scored = chi_by_labelling(features, sets['content'], sets['degradation'], runs, perplexity, progress,
                                  desc=f't-SNE {name}')
        results[name] = {'layer': layer, 'dim': int(features.shape[1]), **scored}
        print(f'{name} ({layer}): CHI by content {format_score(scored["content"]["chi"])}, '
              f'by degradation {format_score(scored["degradation"]["chi"])}', file=sys.stderr)
    return results


def train_content_classifier(sets, epochs=15, batch_size=64, lr=1e-3, seed=0, device='cpu', progress=True):
    """A timm resnet18 trained to name the content class of a clean LR patch; returns it and its test accuracy per spec."""
    network = train_resnet18(sets['train_lr'], sets['train_content'], len(sets['photos']), epochs=epochs,
                             batch_size=batch_size, lr=lr, seed=seed, device=device, progress=progress,
                             desc='train content classifier')
    predicted = predict(network, sets['lr'], device=device)
    correct = predicted == sets['content']
    accuracy = {spec: float(correct[sets['degradation'] == index].mean()) for index, spec in enumerate(sets['specs'])}
    return network, accuracy


def plot_content_vs_degradation(results, sets, path):
    """One panel per network (first t-SNE run): colour = content (photo), marker = degradation. Returns ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    markers = ['o', '^', 's', 'x', 'D', 'v', '+', '*']
    figure = Figure(figsize=(4.6 * len(results), 5.0))
    FigureCanvasAgg(figure)
    for index, (name, result) in enumerate(results.items()):
        axes = figure.add_subplot(1, len(results), index + 1)
        points = result['embeddings'][0]
        for degradation in range(len(sets['specs'])):
            for content in range(len(sets['photos'])):
                chosen = (sets['degradation'] == degradation) & (sets['content'] == content)
                axes.scatter(points[chosen, 0], points[chosen, 1], s=12, alpha=0.8, color=f'C{content % 10}',
                             marker=markers[degradation % len(markers)], linewidths=0.8 if degradation else 0)
        axes.set_title(f'{name} · {result["layer"]}\nCHI content {format_score(result["content"]["chi"])}\n'
                       f'CHI degradation {format_score(result["degradation"]["chi"])}', fontsize=9)
        axes.set_xticks([])
        axes.set_yticks([])
    colour_handles = [Line2D([], [], ls='', marker='o', color=f'C{i % 10}', label=f'content {i}')
                      for i in range(len(sets['photos']))]
    marker_handles = [Line2D([], [], ls='', marker=markers[i % len(markers)], color='black', label=spec)
                      for i, spec in enumerate(sets['specs'])]
    figure.legend(handles=colour_handles + marker_handles, loc='lower center', frameon=False, fontsize=8,
                  ncol=min(8, len(colour_handles) + len(marker_handles)), bbox_to_anchor=(0.5, -0.02))
    figure.suptitle('Classification vs SR features (colour = content, marker = degradation)', fontsize=11)
    figure.tight_layout(rect=(0, 0.08, 1, 1))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    figure.savefig(path, dpi=110, bbox_inches='tight')
    return path
