"""After training: fp16 weights files, the validation table, the manifest, and shipping what beats weights/.

Weights files are written by ``scripts/ship_weights.py --fp16`` (``{'params_ema': fp16 state dict}``, and a
``SHA256SUMS`` beside them); shipping calls it again with ``weights/`` as the destination, so that the
shipped file and its manifest are made by the one piece of code that makes them by hand.
"""
import os

from ddrsr.errors import DDRSRError
from ddrsr.results_report import mean_psnr
from ddrsr.weights.companions import ship_checkpoint

MAX_FILE_BYTES = 16 * 1024 * 1024
#: A new model must beat the shipped one by more than this (dB of mean PSNR) to replace it.
SHIP_MARGIN_DB = 0.005


def export_stage(checkpoint, output):
    """fp16 ``params_ema`` of ``checkpoint`` to ``output``; DDRSRError if the file is over 16 MiB."""
    if not os.path.isfile(checkpoint):
        raise DDRSRError(f'{checkpoint} is missing although its training finished; delete its experiment folder '
                         'and rerun the same command to train that stage again')
    info = ship_checkpoint(checkpoint, output, fp16=True)
    if info['bytes'] > MAX_FILE_BYTES:
        raise DDRSRError(f'{output} has {info["bytes"] / 2 ** 20:.1f} MiB, over the 16 MiB limit for a weights file; '
                         'use a smaller network_g in the template')
    return {'file': output, 'sha256': info['sha256'], 'bytes': info['bytes'], 'parameters': info['parameters']}


def prune_checkpoints(experiment):
    """Delete the numbered checkpoints of a finished run except the last one (its state and networks)."""
    models, states = os.path.join(experiment, 'models'), os.path.join(experiment, 'training_states')
    numbers = [int(n.split('.')[0]) for n in os.listdir(states) if n.split('.')[0].isdigit()] \
        if os.path.isdir(states) else []
    keep = str(max(numbers)) if numbers else None
    for folder in (models, states):
        if not os.path.isdir(folder):
            continue
        for name in os.listdir(folder):
            number = os.path.splitext(name)[0].rsplit('_', 1)[-1]
            if number.isdigit() and number != keep and name.endswith(('.pth', '.state')):
                os.remove(os.path.join(folder, name))


def load_network(network_opt, path, device='cpu'):
    """Build ``network_opt`` (a ``network_g`` section) and load weights file ``path`` strictly; eval mode."""
    from ddrsr.loader import load

    return load(dict(network_opt), weights=path, device=device, hint='train and export it again').network


def evaluate_network(network, val, specs, device, progress=True):
    """``ddrsr.evaluation.evaluate`` of ``network`` (or ``'bicubic'``) on ``val = (hr, meta_info, crop, specs)``."""
    from ddrsr.evaluation import bicubic_upscaler, evaluate

    hr, meta_info, crop_size, _ = val
    upscale = bicubic_upscaler(4) if network == 'bicubic' else network
    return evaluate(upscale, hr, list(specs), scale=4, meta_info=meta_info, crop_size=crop_size, device=device,
                    progress=progress)


def validation_markdown(table, labels, val, command):
    """The table of ``ddrsr evaluate --output`` for the release models."""
    from ddrsr.results_report import results_markdown

    hr, meta_info, crop_size, specs = val
    report = {'hr': hr, 'meta_info': meta_info, 'crop_size': crop_size, 'scale': 4, 'specs': list(specs),
              'results': table}
    return results_markdown(report, labels, command=command)


def shipped_network(stage, weights_dir, device):
    """The shipped model of ``stage`` from ``weights_dir`` (sha256-checked), or None when there is none."""
    from ddrsr.loader import load
    from ddrsr.weights.manifest import verify_shipped

    path = os.path.join(weights_dir, stage.file)
    if not os.path.isfile(path):
        return None
    verify_shipped(path, weights_dir)
    return load(stage.zoo_name, weights=path, device=device, hint='check weights/SHA256SUMS').network


def ship_stage(stage, new_file, val, weights_dir, device, progress=True):
    """Replace ``weights_dir/<file>`` by ``new_file`` if the new model beats it on ``stage.ship_specs``.

    Both are evaluated here, on ``device``, as the zoo model ``stage.zoo_name`` (whose architecture the new file
    must fit). Returns ``{'shipped': bool, 'reason': str, 'new': dB or None, 'shipped_before': dB or None}``.
    """
    from ddrsr.loader import load

    try:  # the zoo must be able to load the file it will ship
        network = load(stage.zoo_name, weights=new_file, device=device,
                       hint=f'the new network_g is not the architecture of zoo model {stage.zoo_name!r}').network
    except DDRSRError as error:
        return {'shipped': False, 'new': None, 'shipped_before': None,
                'reason': f'{error}; update ddrsr/zoo.py first'}
    new = mean_psnr(evaluate_network(network, val, stage.ship_specs, device, progress), stage.ship_specs, strict=True)
    old_network = shipped_network(stage, weights_dir, device)
    old = None
    if old_network is not None:
        old = mean_psnr(evaluate_network(old_network, val, stage.ship_specs, device, progress), stage.ship_specs,
                        strict=True)
    specs = '+'.join(stage.ship_specs)
    if old is not None and new <= old + SHIP_MARGIN_DB:
        return {'shipped': False, 'new': new, 'shipped_before': old,
                'reason': f'mean PSNR over {specs}: {new:.3f} dB, not above the shipped {old:.3f} dB'}
    ship_checkpoint(new_file, os.path.join(weights_dir, stage.file), fp16=True)
    reason = (f'mean PSNR over {specs}: {new:.3f} dB against the shipped {old:.3f} dB' if old is not None
              else f'no shipped file; mean PSNR over {specs}: {new:.3f} dB')
    return {'shipped': True, 'new': new, 'shipped_before': old, 'reason': reason}
