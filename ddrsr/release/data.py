"""Training crops for the release command: use the ones ``scripts/prepare_dataset.py`` made, or make them."""
import os

from ddrsr.errors import DDRSRError
from ddrsr.data.prepare import prepare, read_exclusions
from ddrsr.release.stages import train_data

CROP_SIZE = STEP = 256  # as in weights/README.md


def hr_folder(dataroot):
    """The photos a crop folder is cut from: ``<dataset>/hr`` beside ``<dataset>/train_sub``."""
    return os.path.join(os.path.dirname(os.path.normpath(dataroot)), 'hr')


def ensure_training_data(templates, progress=True):
    """Make the crops (and meta-info file) every template trains on, where they are missing.

    The photos come from the ``hr`` folder beside the crop folder; the photos that any template validates
    on are left out. Returns the list of crop folders that were made.
    """
    made = []
    val_names = set()
    for opt in templates.values():
        for phase, dataset in opt['datasets'].items():
            if phase.startswith('val') and dataset.get('meta_info') and os.path.isfile(dataset['meta_info']):
                val_names |= read_exclusions(dataset['meta_info'])
    for dataroot, meta_info in {train_data(opt) for opt in templates.values()}:
        if os.path.isdir(dataroot) and (not meta_info or os.path.isfile(meta_info)) and os.listdir(dataroot):
            continue
        photos = hr_folder(dataroot)
        if not os.path.isdir(photos) or not os.listdir(photos):
            raise DDRSRError(f'the training crops {dataroot} are missing, and so are the photos to cut them from '
                             f'({photos}); run python scripts/fetch_photos.py first (or unpack a --pack bundle)')
        kept, _, _ = prepare(photos, dataroot, CROP_SIZE, STEP, exclude=val_names, meta_info=meta_info,
                             progress=progress)
        if not kept:
            raise DDRSRError(f'no training crops could be cut from {photos}; it needs photos of at least '
                             f'{CROP_SIZE}x{CROP_SIZE} pixels')
        made.append(dataroot)
    return made
