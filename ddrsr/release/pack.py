"""``--pack DIR``: a self-contained bundle that runs the release command on a machine with only torch.

The bundle holds the code (``ddrsr/``, ``scripts/``, ``options/``, ``setup.py``, ``inference.py``), the
training photos resized so that their long side is at most 1600 px (JPEG, 4:4:4, at the highest quality
that fits), the validation photos as their exact centre crops (PNG; evaluation reads the same pixels as
from the full photos), wheels for what such a machine may lack (kornia, kornia_rs, basicsr) and
``install.sh``, which installs them in one step and checks the other imports. Shipped weights are not
included: training starts from scratch, and ``--ship`` runs where ``weights/`` is.
"""
import glob
import importlib.metadata
import os
import shutil
import subprocess
import sys

import cv2
from tqdm import tqdm

from ddrsr.errors import DDRSRError
from ddrsr.release.stages import ROOT, STAGES, TEMPLATES_DIR, load_template, train_data, validation_set

MAX_BUNDLE_BYTES = 40 * 1024 * 1024
MAX_LONG_SIDE = 1600
CODE = ('ddrsr', 'scripts', 'options')
CODE_FILES = ('setup.py', 'inference.py', 'README.md')
CODE_EXTENSIONS = ('.py', '.yml', '.txt', '.md')
PYTHON_VERSION = '3.12'
INSTALL_SH = '''#!/bin/sh
# Installs what the release command needs beyond torch, from the wheels in this bundle, in one step:
#   sh install.sh && python scripts/train_release.py --budget 540 --device cuda --output release_run
set -e
cd "$(dirname "$0")"
python -m pip install --no-index --no-deps --find-links wheels wheels/*.whl
python - <<'EOF'
import importlib
missing = []
for name in ('torch', 'torchvision', 'cv2', 'numpy', 'scipy', 'yaml', 'tqdm', 'PIL', 'requests', 'kornia', 'basicsr'):
    try:
        importlib.import_module(name)
    except Exception as error:
        missing.append(f'{name} ({error})')
if missing:
    raise SystemExit('install.sh: still missing: ' + ', '.join(missing) + '; pip install them (opencv-python for cv2)')
import torch
import ddrsr  # noqa: E402

ddrsr.register()  # basicsr's registries
print(f'install.sh: ready (torch {torch.__version__}, CUDA available: {torch.cuda.is_available()})')
EOF
'''


def _copy_code(bundle):
    for folder in CODE:
        for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, folder)):
            dirnames[:] = [d for d in dirnames if d != '__pycache__' and not d.startswith('.')]
            for name in filenames:
                if name.endswith(CODE_EXTENSIONS):
                    source = os.path.join(dirpath, name)
                    target = os.path.join(bundle, os.path.relpath(source, ROOT))
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    shutil.copy2(source, target)
    for name in CODE_FILES:
        if os.path.exists(os.path.join(ROOT, name)):
            shutil.copy2(os.path.join(ROOT, name), os.path.join(bundle, name))


def resized(image, long_side=MAX_LONG_SIDE):
    """``image`` (H, W, C) shrunk with area averaging so that its long side is at most ``long_side``."""
    height, width = image.shape[:2]
    factor = long_side / max(height, width)
    if factor >= 1:
        return image
    return cv2.resize(image, (round(width * factor), round(height * factor)), interpolation=cv2.INTER_AREA)


def _jpeg(image, quality):
    ok, data = cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_QUALITY, int(quality),
                                            cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444])
    if not ok:
        raise DDRSRError('OpenCV could not encode a JPEG')
    return data.tobytes()


def _inside(path, root):
    relative = os.path.relpath(path, root)
    if relative.startswith('..'):
        raise DDRSRError(f'{path} lies outside {root}; --pack keeps data paths relative to the repository, so put '
                         'the photos under it (e.g. datasets/)')
    return relative


def _photos(templates, root):
    """``(train photos, val photos, crop size, photo folder and val folder relative to ``root``)``."""
    from ddrsr.data.image_io import list_images
    from ddrsr.release.data import hr_folder
    from ddrsr.data.prepare import read_exclusions

    hr, meta_info, crop, _ = max((validation_set(t) for t in templates.values()), key=lambda v: v[2])
    val_paths = list_images(hr, meta_info)
    val_stems = {os.path.splitext(os.path.basename(p))[0] for p in val_paths}
    photos_dir = hr_folder(train_data(templates['rrdb_clean'])[0])
    if not os.path.isdir(photos_dir):
        raise DDRSRError(f'no photos in {photos_dir} to pack; run python scripts/fetch_photos.py first')
    exclude = read_exclusions(meta_info) if meta_info else set()
    train = [p for p in list_images(photos_dir)
             if os.path.splitext(os.path.basename(p))[0] not in val_stems | exclude]
    return train, val_paths, crop, _inside(photos_dir, root), _inside(hr, root)


def _wheels(folder, wheels_from):
    os.makedirs(folder, exist_ok=True)
    if wheels_from:
        for path in glob.glob(os.path.join(wheels_from, '*.whl')):
            shutil.copy2(path, folder)
        return
    pins = [f'{name}=={importlib.metadata.version(name)}' for name in ('kornia', 'kornia_rs')]
    commands = [[sys.executable, '-m', 'pip', 'download', '--python-version', PYTHON_VERSION, '--only-binary=:all:',
                 '--no-deps', '-d', folder, *pins],
                [sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-w', folder,
                 f'basicsr=={importlib.metadata.version("basicsr")}']]
    for command in commands:
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise DDRSRError(f'{" ".join(command[2:4])} failed ({result.stderr.strip()[-300:]}); it needs PyPI. '
                             'Download the wheels elsewhere and pass their folder with --wheels DIR')


def _folder_bytes(folder):
    return sum(os.path.getsize(os.path.join(d, n)) for d, _, names in os.walk(folder) for n in names)


def pack(bundle, templates_dir=TEMPLATES_DIR, wheels_from=None, max_bytes=MAX_BUNDLE_BYTES, progress=True,
         data_root=ROOT):
    """Write the bundle to ``bundle`` (which must not exist or be empty); returns a summary dict.

    Args:
        templates_dir (str): where the stages' lite option files are (their data paths say what to pack).
        wheels_from (str, optional): a folder of wheels to copy instead of downloading them from PyPI.
        data_root (str): the data keeps its path relative to this folder inside the bundle.
    """
    from ddrsr.data.patches import centre_crop

    bundle = os.path.abspath(bundle)
    if os.path.exists(bundle) and os.listdir(bundle):
        raise DDRSRError(f'{bundle} is not empty; give a new folder to --pack')
    templates = {stage.key: load_template(stage, templates_dir, data_root) for stage in STAGES}
    train, val, crop, photos_rel, val_rel = _photos(templates, data_root)
    os.makedirs(bundle, exist_ok=True)
    _copy_code(bundle)
    with open(os.path.join(bundle, 'install.sh'), 'w') as f:
        f.write(INSTALL_SH)
    os.chmod(os.path.join(bundle, 'install.sh'), 0o755)
    _wheels(os.path.join(bundle, 'wheels'), wheels_from)
    val_dir = os.path.join(bundle, val_rel)
    os.makedirs(val_dir, exist_ok=True)
    for path in val:  # exact centre crops, so evaluation sees the pixels it sees in the full photos
        image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        cv2.imwrite(os.path.join(val_dir, os.path.basename(path)), centre_crop(image, crop) if crop else image)
    images = [resized(cv2.imread(p, cv2.IMREAD_COLOR)) for p in tqdm(train, desc='resize photos', unit='photo',
                                                                      disable=not progress)]
    room = max_bytes - _folder_bytes(bundle) - 256 * 1024  # a margin for the file system's rounding
    low, high, best = 60, 98, None
    while low <= high:  # the highest JPEG quality whose photos fit in the room left
        quality = (low + high) // 2
        size = sum(len(_jpeg(image, quality)) for image in images)
        if size <= room:
            best, low = quality, quality + 1
        else:
            high = quality - 1
    if best is None:
        raise DDRSRError(f'{len(images)} training photos do not fit in {max_bytes / 2 ** 20:.0f} MiB even at JPEG '
                         'quality 60; pack fewer photos')
    photos_dir = os.path.join(bundle, photos_rel)
    os.makedirs(photos_dir, exist_ok=True)
    for path, image in zip(train, images):
        stem = os.path.splitext(os.path.basename(path))[0]
        with open(os.path.join(photos_dir, f'{stem}.jpg'), 'wb') as f:
            f.write(_jpeg(image, best))
    total = _folder_bytes(bundle)
    if total > max_bytes:
        raise DDRSRError(f'the bundle has {total / 2 ** 20:.1f} MiB, over {max_bytes / 2 ** 20:.0f} MiB')
    return {'bundle': bundle, 'bytes': total, 'mib': round(total / 2 ** 20, 2), 'training_photos': len(train),
            'jpeg_quality': best, 'validation_crops': len(val), 'crop_size': crop,
            'wheels': sorted(os.listdir(os.path.join(bundle, 'wheels'))),
            'run': f'cd {bundle} && sh install.sh && python scripts/train_release.py --budget 540 --device cuda '
                   '--output release_run'}
