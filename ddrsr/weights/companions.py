"""The companions of a shipped ``.pth``: ``NAME.safetensors`` (weights + header metadata) and ``NAME.json``.

``NAME.json`` is an OpenModelDB-style model card (name, architecture, scale, licence, sha256 of each file,
training data, a sample pair). Both are derived from the ``.pth``, the zoo entry (``ddrsr.zoo.MODELS``) and the
option file that trained it, so :func:`write_companions` can regenerate them at any time:
``ship_checkpoint`` (here) calls it whenever it ships a zoo file, and ``python scripts/ship_weights.py
--manifest_only`` for every shipped file. Nothing time-dependent is written, so regenerating unchanged weights
gives byte-identical files (no churn in git).

Where the provenance comes from, first match wins: the ``options``/``iterations`` passed in (a re-ship); the
card already beside the ``.pth`` when it describes the same ``.pth`` (its sha256), so a regeneration keeps
what the last ship recorded; the zoo entry's ``options`` with that file's ``train.total_iter``.
"""
import json
import os

import torch

from ddrsr.errors import DDRSRError
from ddrsr.utils.atomic_file import AtomicFile
from ddrsr.weights.checkpoint import load_state_dict_file
from ddrsr.weights.manifest import MANIFEST_NAME, sha256_file, write_manifest

FORMAT_VERSION = '1'
#: No licence has been chosen for the weights yet; SPDX's NOASSERTION says exactly that. The training photos'
#: own licences (GPL-2+, LGPL-2.1+, CC-BY(-SA), CC0) are listed per photo in docs/DATA.md.
WEIGHTS_LICENSE = 'NOASSERTION'
LICENSE_NOTE = ('no licence has been chosen for these weights yet; they were trained on freely licensed photos '
                'whose licences are listed per photo in docs/DATA.md')
TRAINING_DATA = 'debian_photos: 48 photographs from Debian packages, cut into 256 px crops (docs/DATA.md)'
SAMPLE_LR = 'inputs/seeding_small.png'
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository


def zoo_name_for(path):
    """The zoo name whose shipped file has ``path``'s file name, or None."""
    from ddrsr.zoo import MODELS

    base = os.path.basename(path)
    return next((name for name, entry in MODELS.items() if os.path.basename(entry['file']) == base), None)


def companion_paths(pth_path):
    """``(NAME.safetensors, NAME.json)`` beside ``pth_path``."""
    stem = os.path.splitext(pth_path)[0]
    return stem + '.safetensors', stem + '.json'


def _read_pth(path):
    """The ``params_ema`` state dict of ``path`` as stored (dtype kept), read without an unsafe unpickle."""

    checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    state = checkpoint.get('params_ema', checkpoint.get('params')) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        state = load_state_dict_file(path)  # raises the usual DDRSRError for what is not a BasicSR checkpoint
    return {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}


def provenance(name, source_sha256, card_path, options=None, iterations=None):
    """``{'options', 'iterations', 'pretrained', 'batch_size', 'hr_patch', 'dataset'}`` for zoo model ``name``."""
    from ddrsr.utils.option_file import load_yaml
    from ddrsr.zoo import MODELS

    if options is None and iterations is None and os.path.isfile(card_path):
        with open(card_path, encoding='utf-8') as f:
            card = json.load(f)
        if card.get('ddrsr', {}).get('source_sha256') == source_sha256:
            return card['ddrsr']['training']
    options = options or MODELS[name].get('options')
    opt = load_yaml(os.path.join(_ROOT, options)) if options and os.path.isfile(os.path.join(_ROOT, options)) else {}
    train_set = opt.get('datasets', {}).get('train', {})
    return {'options': options, 'iterations': int(iterations or opt.get('train', {}).get('total_iter') or 0) or None,
            'pretrained': opt.get('path', {}).get('pretrain_network_g'),
            'batch_size': train_set.get('batch_size_per_gpu'), 'hr_patch': train_set.get('gt_size'),
            'dataset': TRAINING_DATA if train_set.get('name') == 'debian_photos' else train_set.get('name')}


def header_metadata(name, entry, source, source_sha256, training):
    """The ``.safetensors`` header: ``{str: str}`` (nested values as JSON)."""
    arch = {k: v for k, v in entry['arch'].items() if k != 'type'}
    return {'format': 'pt', 'ddrsr.format': FORMAT_VERSION, 'ddrsr.model_name': name,
            'ddrsr.architecture': entry['arch']['type'], 'ddrsr.arch_args': json.dumps(arch, sort_keys=True),
            'ddrsr.scale': str(entry['scale']), 'ddrsr.training_options': str(training.get('options')),
            'ddrsr.iterations': str(training.get('iterations')), 'ddrsr.license': WEIGHTS_LICENSE,
            'ddrsr.license_note': LICENSE_NOTE, 'ddrsr.training_data': 'docs/DATA.md',
            'ddrsr.source_file': os.path.basename(source), 'ddrsr.source_sha256': source_sha256}


def model_card(name, entry, files, training, source_sha256, parameters):
    """OpenModelDB-style card for zoo model ``name``; ``files`` maps each shipped path to its sha256."""
    arch = entry['arch']
    size = [f"{arch['num_feat']}nf", f"{arch['num_block']}nb"] if 'num_block' in arch and 'num_grow_ch' in arch else []
    command = f'python inference.py -n {name} -i {SAMPLE_LR} -o results'
    return {
        'name': name, 'author': 'ddrsr', 'license': WEIGHTS_LICENSE, 'licenseNote': LICENSE_NOTE,
        'tags': ['photo', 'blind-sr'] + (['ddr'] if arch.get('use_ddr') else []),
        'description': entry.get('description', ''),
        'architecture': arch['type'], 'size': size, 'scale': entry['scale'], 'inputChannels': 3, 'outputChannels': 3,
        'resources': [{'platform': 'pytorch', 'type': os.path.splitext(path)[1].lstrip('.'),
                       'size': os.path.getsize(path), 'sha256': digest, 'urls': [f'weights/{os.path.basename(path)}']}
                      for path, digest in files.items()],
        'trainingIterations': training.get('iterations'), 'trainingBatchSize': training.get('batch_size'),
        'trainingHRSize': training.get('hr_patch'), 'trainingOTF': True, 'dataset': training.get('dataset'),
        'pretrainedModelG': training.get('pretrained'),
        'images': [{'type': 'paired', 'LR': SAMPLE_LR, 'SR': f'results/{os.path.basename(SAMPLE_LR)[:-4]}_out.png',
                    'caption': f'the SR side is made by: {command}'}],
        'ddrsr': {'arch': arch, 'parameters': parameters, 'training': training, 'source_sha256': source_sha256,
                  'load': f"ddrsr.loader.load('{name}'); spandrel: import ddrsr.integrations.spandrel first"},
    }


def write_companions(pth_path, name=None, options=None, iterations=None):
    """Write ``NAME.safetensors`` and ``NAME.json`` beside the shipped ``pth_path``; returns their paths.

    Args:
        pth_path (str): the ``.pth`` (``{'params_ema': state_dict}``).
        name (str, optional): its zoo name; default: the zoo entry whose ``file`` has this file name.
        options (str, optional): option file that trained it (default: see the module docstring).
        iterations (int, optional): iterations it was trained for (default: the option file's ``total_iter``).

    Returns:
        dict: ``{'safetensors': path, 'card': path}``, or ``{}`` when the file is not a zoo model's (its
        architecture is then unknown).
    """
    from ddrsr.zoo import MODELS

    name = name or zoo_name_for(pth_path)
    if name is None:
        return {}
    entry = MODELS[name]
    safetensors_path, card_path = companion_paths(pth_path)
    source_sha256 = sha256_file(pth_path)
    training = provenance(name, source_sha256, card_path, options, iterations)
    state = _read_pth(pth_path)
    layer = entry['arch'].get('encoder', {}).get('layer') if entry['arch'].get('use_ddr') else None
    from ddrsr.weights.file_format import write_weights

    write_weights(safetensors_path, state, layer, header_metadata(name, entry, pth_path, source_sha256, training))
    files = {pth_path: source_sha256, safetensors_path: sha256_file(safetensors_path)}
    card = model_card(name, entry, files, training, source_sha256, sum(v.numel() for v in state.values()))
    with AtomicFile(card_path) as f:
        f.write((json.dumps(card, indent=1) + '\n').encode('utf-8'))
    return {'safetensors': safetensors_path, 'card': card_path}


def write_all_companions(folder):
    """Regenerate the companions of every zoo ``.pth`` present in ``folder``; returns ``{name: paths}``."""
    from ddrsr.zoo import MODELS, ships_pth

    written = {}
    for name, entry in MODELS.items():
        path = os.path.join(folder, os.path.basename(entry['file']))
        if ships_pth(name) and os.path.isfile(path):  # imported files carry their own card
            written[name] = write_companions(path, name)
    return written


def ship_delta(checkpoint, output, name, options=None, iterations=None):
    """Ship zoo model ``name`` (one with a detail knob) as a delta ``.safetensors`` over its base, with its card.

    Only the tensors of ``checkpoint``'s ``params_ema`` that the base model lacks or holds differently are stored,
    in fp16 (``ddrsr.weights.delta``); the header names the base and its sha256, which the loader checks. The
    card and ``SHA256SUMS`` beside ``output`` are rewritten. Returns ``{'file', 'sha256', 'bytes', 'parameters',
    'stored', 'card'}`` (``parameters``: the whole network's; ``stored``: the delta's).
    """
    from ddrsr.weights.delta import delta_state
    from ddrsr.weights.file_format import write_weights
    from ddrsr.zoo import MODELS, shipped_file

    entry = MODELS[name]
    if not entry.get('detail'):
        raise DDRSRError(f'model {name!r} has no base model to store a delta against')
    base_name = entry['detail']['base']
    base_path = shipped_file(base_name)
    state = load_state_dict_file(checkpoint, 'params_ema')
    # fp16, except the frozen DDR encoder: it must stay bit-identical to the shipped encoder, whose fingerprint the
    # inspect regressors (strength auto, serve) check.
    delta = {k: v.half() if v.is_floating_point() and not k.startswith('encoder.') else v
             for k, v in delta_state(state, load_state_dict_file(base_path)).items()}
    source_sha256 = sha256_file(checkpoint)
    training = provenance(name, source_sha256, os.path.splitext(output)[0] + '.json', options, iterations)
    from ddrsr.weights.file_format import read_metadata

    base_meta = read_metadata(base_path)
    license_note = (f'the stored head tensors are fine-tuned from {base_name} (its licence, {base_meta.get("ddrsr.license")}, '
                    f'and notice follow); the StyleMods and the DDR encoder are ddrsr\'s ({LICENSE_NOTE}).\n'
                    + base_meta.get('ddrsr.license_note', ''))
    metadata = header_metadata(name, entry, checkpoint, source_sha256, training)
    metadata.update({'ddrsr.base_model': base_name, 'ddrsr.base_sha256': sha256_file(base_path),
                     'ddrsr.license': base_meta.get('ddrsr.license', WEIGHTS_LICENSE), 'ddrsr.license_note': license_note})
    layer = entry['arch'].get('encoder', {}).get('layer') if entry['arch'].get('use_ddr') else None
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    write_weights(output, delta, layer, metadata)
    card_path = os.path.splitext(output)[0] + '.json'
    card = model_card(name, entry, {output: sha256_file(output)}, training, source_sha256,
                      sum(v.numel() for v in state.values()))
    card.update({'license': metadata['ddrsr.license'], 'licenseNote': license_note})
    card['ddrsr'].update({'base_model': base_name, 'stored_parameters': sum(v.numel() for v in delta.values()),
                          'detail': entry['detail'],
                          'load': f"ddrsr.loader.load('{name}', detail=0..1): a delta over weights/"
                                  f"{os.path.basename(base_path)}, which ddrsr composes (spandrel cannot load it)"})
    with AtomicFile(card_path) as f:
        f.write((json.dumps(card, indent=1) + '\n').encode('utf-8'))
    write_manifest(os.path.dirname(os.path.abspath(output)))
    return {'file': output, 'sha256': sha256_file(output), 'bytes': os.path.getsize(output),
            'parameters': card['ddrsr']['parameters'], 'stored': card['ddrsr']['stored_parameters'], 'card': card_path}


def ship_checkpoint(checkpoint, output, fp16=False, name=None, options=None, iterations=None):
    """Write ``{'params_ema': state_dict}`` of ``checkpoint`` to ``output``, its companions, and the manifest.

    Optimizer state, raw ``params`` and discriminators are left behind; ``fp16`` halves floating tensors (loaders
    cast them back). When ``output`` is a zoo model's file (or ``name`` says which), its ``.safetensors`` and
    ``.json`` model card are regenerated beside it (:func:`write_companions`; ``options``/``iterations`` record how
    it was trained). Returns ``{'file', 'sha256', 'bytes', 'parameters', 'manifest', 'companions'}``.
    """

    if str(output).endswith('.safetensors'):
        from ddrsr.zoo import MODELS

        zoo = name or zoo_name_for(output)
        raise DDRSRError(f'{output} is not a .pth: '
                         + (f'ship {zoo} with --delta {zoo}' if zoo in MODELS and MODELS[zoo].get('detail') else
                            'imported files are written by their import script (scripts/import_realesrgan.py), '
                            'delta files by ship_weights.py --delta NAME'))
    state = load_state_dict_file(checkpoint, 'params_ema')
    if fp16:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    folder = os.path.dirname(os.path.abspath(output))
    os.makedirs(folder, exist_ok=True)
    temp = output + '.tmp'
    torch.save({'params_ema': state}, temp)
    os.replace(temp, output)
    companions = write_companions(output, name, options, iterations)
    write_manifest(folder)
    return {'file': output, 'sha256': sha256_file(output), 'bytes': os.path.getsize(output),
            'parameters': sum(v.numel() for v in state.values()), 'manifest': os.path.join(folder, MANIFEST_NAME),
            'companions': companions}


def ship_all_companions(folder):
    """Regenerate every zoo file's companions in ``folder`` and then its manifest; returns the manifest."""
    write_all_companions(folder)
    return write_manifest(folder)
