"""How DDR-CHI and PSNR change over training: one row per saved generator checkpoint.

Liu et al. observe that degradation-related "semantics" appear (CHI rises) as training goes on. This
module finds the checkpoints of a BasicSR experiment, builds the generator once from an option file
or a zoo entry (``ddrsr.loader.build_generator``), and loads each checkpoint into it in turn.
"""
import csv
import glob
import os
import re

from ddrsr.errors import DDRSRError

ITERATION = re.compile(r'_(\d+)\.pth$')
CSV_FIELDS = ('iteration', 'checkpoint', 'layer', 'chi_mean', 'chi_std', 'wd_mean', 'wd_std', 'bd_mean', 'bd_std',
              'psnr_clean')


def list_checkpoints(experiment=None, checkpoints=None):
    """``[(iteration, path), ...]`` sorted by iteration.

    ``experiment`` is a BasicSR experiment folder; its ``models/net_g_<iter>.pth`` files are used
    (``net_g_latest.pth`` is skipped: it duplicates the last numbered one). ``checkpoints`` are explicit
    files; those without ``_<iter>.pth`` in the name are numbered by their position.
    """
    if experiment:
        folder = os.path.join(experiment, 'models')
        if not os.path.isdir(folder):
            raise DDRSRError(f'{experiment!r} is not a BasicSR experiment folder (no models/ inside); '
                             'pass experiments/NAME or --checkpoints FILES')
        from ddrsr.weights.checkpoint import numbered_checkpoints

        paths = [path for _, path in sorted(numbered_checkpoints(experiment).items())]
        if not paths:
            raise DDRSRError(f'no net_g_<iteration>.pth checkpoints in {folder!r}; has the run saved any yet?')
    else:
        paths = list(checkpoints or [])
        missing = [p for p in paths if not os.path.isfile(p)]
        if missing:
            raise DDRSRError(f'checkpoint file(s) not found: {", ".join(missing)}')
    if not paths:
        raise DDRSRError('no checkpoints given; pass --experiment experiments/NAME or --checkpoints FILES')
    numbered = [(int(ITERATION.search(p).group(1)) if ITERATION.search(p) else None, p) for p in paths]
    if all(iteration is not None for iteration, _ in numbered):
        return sorted(numbered)
    return [(index, path) for index, (_, path) in enumerate(numbered)]


def network_options(arch_from_model=None, opt=None, experiment=None):
    """``(network_g option dict, scale)`` from a zoo name, an option file, or the experiment's copy of it.

    BasicSR copies the training option file into the experiment folder, so with neither ``opt`` nor
    ``arch_from_model`` that copy is used when there is exactly one.
    """
    if arch_from_model:
        from ddrsr.zoo import model_entry
        entry = model_entry(arch_from_model)
        return entry['arch'], entry['scale']
    if not opt and experiment:
        found = sorted(glob.glob(os.path.join(experiment, '*.yml')))
        if len(found) != 1:
            raise DDRSRError(f'cannot tell the architecture: {experiment!r} holds {len(found)} option files; '
                             'pass --opt options/FILE.yml or --arch_from_model ZOO_NAME')
        opt = found[0]
    if not opt:
        raise DDRSRError('pass --opt options/FILE.yml or --arch_from_model ZOO_NAME to build the architecture')
    from ddrsr.utils.option_file import network_options as from_option_file
    return from_option_file(opt)


def load_checkpoint_into(network, path):
    """Load a BasicSR checkpoint (``params_ema``, else ``params``) into ``network``, strictly."""
    from ddrsr.weights.checkpoint import load_into

    return load_into(network, path, 'pass the matching --opt or --arch_from_model')


def checkpoint_evolution(network, checkpoints, layer, sets, val_hr, scale, runs=5, perplexity=None,
                         crop_size=192, meta_info=None, seed=0, device='cpu', progress=True):
    """CHI at ``layer`` on ``sets`` and PSNR on clean ``val_hr`` for each checkpoint.

    Args:
        network (nn.Module): the architecture (weights are replaced by each checkpoint in turn).
        checkpoints (list[tuple[int, str]]): ``(iteration, path)`` from :func:`list_checkpoints`.
        sets (dict): ``{name: (N, 3, p, p)}`` patch sets, shared by all checkpoints.
        val_hr (str): HR folder for PSNR (centre crops of ``crop_size``, bicubic-down ``clean`` LQ);
            ``meta_info`` optionally names the images to use.

    Returns:
        list[dict]: one row per checkpoint with the keys of :data:`CSV_FIELDS`.
    """
    from ddrsr.evaluation import evaluate

    from .ddr import analyze_layer

    network = network.to(device).eval().requires_grad_(False)
    rows = []
    for iteration, path in checkpoints:
        load_checkpoint_into(network, path)
        analysis = analyze_layer(network, layer, sets, runs=runs, perplexity=perplexity, device=device,
                                 progress=progress)
        psnr = evaluate(network, val_hr, ['clean'], scale=scale, meta_info=meta_info, crop_size=crop_size, seed=seed,
                        device=device, progress=progress)['clean']['psnr']
        scores = analysis.scores
        rows.append({'iteration': iteration, 'checkpoint': path, 'layer': layer,
                     'chi_mean': scores['chi']['mean'], 'chi_std': scores['chi']['std'],
                     'wd_mean': scores['wd']['mean'], 'wd_std': scores['wd']['std'],
                     'bd_mean': scores['bd']['mean'], 'bd_std': scores['bd']['std'], 'psnr_clean': psnr})
    return rows


def write_csv(rows, path):
    """Write the rows of :func:`checkpoint_evolution` as CSV; returns ``path``."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return path
