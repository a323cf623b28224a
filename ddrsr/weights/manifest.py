"""sha256 manifest of the shipped weights (``weights/SHA256SUMS``), checked before a shipped file is used.

The manifest is in ``sha256sum`` format (``<hex>  <file name>`` per line), so ``cd weights && sha256sum -c
SHA256SUMS`` checks it too. ``scripts/ship_weights.py`` rewrites it from the files present whenever it
ships one (or with ``--manifest_only``), after writing each zoo ``.pth``'s companions (``.safetensors`` and the
``.json`` model card): the shipping itself is ``ddrsr.weights.companions``, above this module. Only files loaded by zoo name from the weights folder are
verified; a user's own ``--weights`` checkpoint has no manifest to be checked against.
"""
import hashlib
import os

import torch

from ddrsr.errors import DDRSRError

MANIFEST_NAME = 'SHA256SUMS'
WEIGHT_EXTENSIONS = ('.pth', '.pt', '.safetensors', '.npz')  # .npz: the inspect regressors


def sha256_file(path, chunk=1 << 20):
    """Hex sha256 of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


def state_fingerprint(network):
    """A short sha256 of ``network``'s weights alone: state-dict names, shapes, dtypes and values.

    Nothing about the software enters it (no torch version, no class name), so a table keyed on it (the inspect
    strength tables) stays valid across upgrades and is invalidated only by other weights.
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(network.state_dict().items()):
        digest.update(f'{name}:{tuple(tensor.shape)}:{tensor.dtype}'.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def read_manifest(folder):
    """``{file name: sha256}`` from ``folder/SHA256SUMS``; DDRSRError if it is missing or malformed."""
    path = os.path.join(folder, MANIFEST_NAME)
    try:
        with open(path, encoding='utf-8') as f:
            lines = [line.rstrip('\n') for line in f if line.strip()]
    except FileNotFoundError:
        raise DDRSRError(f'{path} is missing, so the shipped weights cannot be verified; restore it (git '
                         'checkout weights/) or rebuild it with python scripts/ship_weights.py --manifest_only') from None
    manifest = {}
    for number, line in enumerate(lines, 1):
        digest, sep, name = line.partition('  ')
        if not sep or len(digest) != 64 or any(c not in '0123456789abcdef' for c in digest):
            raise DDRSRError(f'{path}, line {number}: expected "<sha256>  <file>", got {line!r}; rebuild it with '
                             'python scripts/ship_weights.py --manifest_only')
        manifest[name.lstrip('*')] = digest  # '*' marks binary mode in sha256sum's format
    return manifest


def write_manifest(folder):
    """Rewrite ``folder/SHA256SUMS`` from every weights file in ``folder``; returns ``{name: sha256}``."""
    names = sorted(n for n in os.listdir(folder) if n.endswith(WEIGHT_EXTENSIONS)
                   and os.path.isfile(os.path.join(folder, n)))
    manifest = {name: sha256_file(os.path.join(folder, name)) for name in names}
    path = os.path.join(folder, MANIFEST_NAME)
    with open(path + '.tmp', 'w', encoding='utf-8') as f:
        f.writelines(f'{digest}  {name}\n' for name, digest in manifest.items())
    os.replace(path + '.tmp', path)
    return manifest


def verify_shipped(path, folder):
    """Check that weights file ``path`` (inside ``folder``) matches its sha256 in ``folder``'s manifest.

    Raises:
        DDRSRError: the manifest is missing, does not list the file, or lists another checksum (a
            corrupted download, a truncated checkout, a file replaced without re-running ship_weights).
    """
    name = os.path.basename(path)
    manifest_path = os.path.join(folder, MANIFEST_NAME)
    expected = read_manifest(folder).get(name)
    if expected is None:
        raise DDRSRError(f'{path} is not listed in {manifest_path}; if you added it on purpose, run '
                         'python scripts/ship_weights.py --manifest_only')
    actual = sha256_file(path)
    if actual != expected:
        raise DDRSRError(f'{path} is corrupted or was replaced: its sha256 is {actual[:16]}..., {manifest_path} '
                         f'expects {expected[:16]}...; restore it (git checkout weights/ or a fresh download), or '
                         'if you replaced it on purpose run python scripts/ship_weights.py --manifest_only')
