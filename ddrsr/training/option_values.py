"""Value checks for option files: the types of the keys BasicSR reads, and dataset paths that must exist.

BasicSR reads values where it uses them, so a wrong type fails hours into a run or never: ``lr: 2e-4``
is *text* to YAML 1.1 (it needs a dot and a signed exponent, ``2.0e-4``, or ``!!float``) and makes Adam
fail only when the optimizer is built; ``save_img: 'false'`` is a true string; a misspelled dataset
folder fails when the first batch is read. These checks run on the parsed file, before anything is built, and name the key
and the file. :mod:`ddrsr.training.options` calls them.
"""
import inspect
import math
import os

from ddrsr.errors import DDRSRError

INT, WHOLE, NUMBER, BOOL, STR = 'an integer', 'a whole number', 'a number', 'true or false', 'text'
#: Keys BasicSR reads with a fixed type, per section ('' is the top level). WHOLE accepts 5000 and
#: ``!!float 5e3`` (BasicSR's own files write frequencies that way). ``~`` (None) is allowed unless the
#: key is in ``REQUIRED_VALUES``.
VALUE_TYPES = {
    '': {'name': STR, 'model_type': STR, 'scale': INT, 'manual_seed': INT, 'find_unused_parameters': BOOL},
    'train': {'total_iter': WHOLE, 'warmup_iter': WHOLE, 'channels_last': BOOL, 'compile': BOOL, 'amp': STR, 'net_d_iters': INT,
              'net_d_init_iters': INT, 'gan_start_iter': WHOLE},
    'val': {'val_freq': WHOLE, 'save_img': BOOL, 'pbar': BOOL, 'suffix': STR},
    'logger': {'print_freq': WHOLE, 'save_checkpoint_freq': WHOLE, 'use_tb_logger': BOOL},
    'path': {'strict_load_g': BOOL, 'strict_load_d': BOOL, 'param_key_g': STR, 'param_key_d': STR,
             'pretrain_network_g': STR, 'pretrain_network_d': STR, 'pretrain_network_encoder': STR,
             'pretrain_network_anchor': STR, 'param_key_anchor': STR, 'strict_load_anchor': BOOL,
             'resume_state': STR},
}
DATASET_TYPES = {'name': STR, 'type': STR, 'batch_size_per_gpu': INT, 'num_worker_per_gpu': INT,
                 'dataset_enlarge_ratio': WHOLE, 'use_shuffle': BOOL, 'pin_memory': BOOL, 'persistent_workers': BOOL,
                 'gt_size': INT, 'crop_size': INT, 'use_hflip': BOOL, 'use_rot': BOOL, 'seed': INT, 'spec': STR,
                 'dataroot_gt': STR, 'dataroot_lq': STR, 'meta_info': STR, 'meta_info_file': STR}
OPTIMIZER_TYPES = {'type': STR, 'lr': NUMBER, 'weight_decay': NUMBER, 'eps': NUMBER, 'momentum': NUMBER}
SCHEDULER_TYPES = {'type': STR, 'gamma': NUMBER, 'eta_min': NUMBER}
REQUIRED_VALUES = {'train.total_iter', 'val.val_freq', 'logger.print_freq', 'logger.save_checkpoint_freq',
                   'train.optim_g.lr', 'train.optim_d.lr', 'scale', 'name', 'model_type'}
#: Dataset keys naming a folder / a file that must exist before training starts.
DATASET_FOLDERS, DATASET_FILES = ('dataroot_gt', 'dataroot_lq'), ('meta_info', 'meta_info_file')


def _fits(value, kind):
    if kind == BOOL:
        return isinstance(value, bool)
    if kind == STR:
        return isinstance(value, str)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if kind == INT:
        return isinstance(value, int)
    return math.isfinite(value) and (kind == NUMBER or float(value).is_integer())


def check_value(value, kind, key, source):
    """DDRSRError naming ``key`` and ``source`` unless ``value`` is of ``kind`` (or None where allowed)."""
    if value is None and key not in REQUIRED_VALUES:
        return
    if _fits(value, kind):
        return
    hint = ''
    if isinstance(value, str) and kind in (NUMBER, WHOLE, INT):
        try:
            float(value)
            hint = f'; YAML 1.1 reads {value} as text: write {float(value)!r} or !!float {value}'
        except ValueError:
            pass
    elif isinstance(value, str) and kind == BOOL:
        hint = '; write true or false without quotes'
    raise DDRSRError(f'{source}: {key} must be {kind}, got {value!r} ({type(value).__name__}){hint}')


def _check_section(section, types, where, source):
    if not isinstance(section, dict):
        return  # a section that is not a mapping is reported by the key check
    for key, kind in types.items():
        if key in section or f'{where}.{key}'.lstrip('.') in REQUIRED_VALUES:
            check_value(section.get(key), kind, f'{where}.{key}'.lstrip('.'), source)


def _default_kind(default):
    """The type a constructor default implies (None when it implies nothing checkable)."""
    if isinstance(default, bool):
        return BOOL
    if isinstance(default, int):
        return INT
    if isinstance(default, float):
        return NUMBER
    if isinstance(default, str):
        return STR
    return None


def check_constructor_values(section, cls, where, source):
    """Compare each key of ``section`` with the type of ``cls.__init__``'s default for it (a net or a loss)."""
    if not isinstance(section, dict):
        return
    for name, parameter in inspect.signature(cls.__init__).parameters.items():
        kind = _default_kind(parameter.default)
        if kind is not None and name in section and section[name] is not None:
            check_value(section[name], kind, f'{where}.{name}', source)


def check_value_types(opt, source='<options>'):
    """Type-check the keys BasicSR reads (see :data:`VALUE_TYPES`); raises DDRSRError naming key and file."""
    for where, types in VALUE_TYPES.items():
        _check_section(opt if where == '' else opt.get(where), types, where, source)
    num_gpu = opt.get('num_gpu')
    if num_gpu != 'auto' and not _fits(num_gpu, INT):
        raise DDRSRError(f'{source}: num_gpu must be an integer or auto, got {num_gpu!r}')
    train = opt.get('train') if isinstance(opt.get('train'), dict) else {}
    for name in ('optim_g', 'optim_d'):
        if isinstance(train.get(name), dict):
            _check_section(train[name], OPTIMIZER_TYPES, f'train.{name}', source)
            betas = train[name].get('betas')
            if betas is not None and not (isinstance(betas, list) and len(betas) == 2
                                          and all(_fits(b, NUMBER) for b in betas)):
                raise DDRSRError(f'{source}: train.{name}.betas must be two numbers, such as [0.9, 0.99], '
                                 f'got {betas!r}')
    scheduler = train.get('scheduler')
    if isinstance(scheduler, dict):
        _check_section(scheduler, SCHEDULER_TYPES, 'train.scheduler', source)
        for key in ('milestones', 'periods'):
            values = scheduler.get(key)
            if values is not None and not (isinstance(values, list) and all(_fits(v, WHOLE) for v in values)):
                raise DDRSRError(f'{source}: train.scheduler.{key} must be a list of iteration numbers, '
                                 f'got {values!r}')
    path = opt.get('path')
    ignored = path.get('param_key_g_exclude') if isinstance(path, dict) else None
    if ignored is not None and not (isinstance(ignored, list) and ignored and all(isinstance(k, str) and k
                                                                                   for k in ignored)):
        raise DDRSRError(f'{source}: path.param_key_g_exclude must be a list of parameter-name prefixes, such as '
                         f'[encoder.mlp, style_mods], got {ignored!r}')
    datasets = opt.get('datasets') if isinstance(opt.get('datasets'), dict) else {}
    for phase, dataset in datasets.items():
        _check_section(dataset, DATASET_TYPES, f'datasets.{phase}', source)
        if phase == 'train' and isinstance(dataset, dict):
            check_value(dataset.get('batch_size_per_gpu'), INT, f'datasets.{phase}.batch_size_per_gpu', source)


def check_dataset_paths(opt, source='<options>'):
    """Every dataset folder (``dataroot_*``) and list file (``meta_info*``) exists (relative to the current
    directory, where BasicSR will open them); raises DDRSRError naming the key and the file."""
    datasets = opt.get('datasets') if isinstance(opt.get('datasets'), dict) else {}
    for phase, dataset in datasets.items():
        if not isinstance(dataset, dict):
            continue
        for keys, exists, what in ((DATASET_FOLDERS, os.path.isdir, 'folder'), (DATASET_FILES, os.path.isfile, 'file')):
            for key in keys:
                path = dataset.get(key)
                if isinstance(path, str) and not exists(os.path.expanduser(path)):
                    raise DDRSRError(f'{source}: datasets.{phase}.{key}: {what} {path!r} does not exist (relative '
                                     f'paths start at {os.getcwd()}); fix the path or prepare the data first '
                                     '(scripts/prepare_dataset.py)')
