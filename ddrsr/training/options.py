"""Check a BasicSR option file before training starts: unknown or misspelled keys fail early.

BasicSR silently ignores keys it does not read, so ``total_iters:`` instead of ``total_iter:`` trains
with a default and nobody notices. :func:`check_options` compares every key with what the consumer
accepts: fixed lists for BasicSR's own sections, constructor signatures for registered networks and
losses, and ``OPTION_KEYS`` for ddrsr's datasets.
"""
import inspect

from ddrsr.errors import DDRSRError, unknown_names_error
from ddrsr.utils.option_file import load_yaml
from ddrsr.training.option_values import check_constructor_values, check_dataset_paths, check_value_types

TOP_KEYS = ('name', 'model_type', 'scale', 'num_gpu', 'manual_seed', 'datasets', 'network_g', 'network_d', 'path',
            'train', 'val', 'logger', 'dist_params', 'degradation', 'find_unused_parameters', 'is_train', 'dist',
            'distill_pool')  # read by scripts/make_distill_pool.py, not by BasicSR
DISTILL_POOL_KEYS = ('source', 'teacher', 'detail', 'num_samples', 'batch_size', 'seed', 'teacher_precision')
PATH_KEYS = ('pretrain_network_g', 'pretrain_network_d', 'strict_load_g', 'strict_load_d', 'param_key_g', 'param_key_d',
             'resume_state', 'pretrain_network_encoder', 'param_key_g_exclude',
             'pretrain_network_anchor', 'param_key_anchor', 'strict_load_anchor',  # ddrsr's DistillationMixin
             'experiments_root', 'models', 'training_states', 'log', 'visualization', 'results_root')
TRAIN_KEYS = ('ema_decay', 'optim_g', 'optim_d', 'scheduler', 'total_iter', 'warmup_iter', 'pixel_opt',
              'perceptual_opt', 'gan_opt', 'ldl_opt', 'net_d_iters', 'net_d_init_iters', 'gan_start_iter',
              'amp', 'channels_last', 'compile',  # ddrsr's FastStepMixin
              'frozen', 'lr_scale',  # ddrsr's ParamGroupsMixin
              'distill_opt', 'anchor_opt')  # ddrsr's DistillationMixin
LOSS_SECTIONS = ('pixel_opt', 'perceptual_opt', 'gan_opt', 'ldl_opt', 'distill_opt', 'anchor_opt')
VAL_KEYS = ('val_freq', 'save_img', 'metrics', 'pbar', 'suffix', 'ddr_chi')  # ddr_chi: ddrsr's CHI hook
LOGGER_KEYS = ('print_freq', 'save_checkpoint_freq', 'use_tb_logger', 'wandb')
# Keys BasicSR's dataloader builder and train loop read from every dataset block.
LOADER_KEYS = ('name', 'type', 'phase', 'scale', 'num_worker_per_gpu', 'batch_size_per_gpu', 'dataset_enlarge_ratio',
               'prefetch_mode', 'pin_memory', 'use_shuffle', 'persistent_workers', 'io_backend')
REQUIRED_TOP = ('name', 'model_type', 'scale', 'num_gpu', 'datasets', 'network_g', 'path', 'train', 'logger')
# Keys that basicsr indexes directly (a missing one would crash mid-run with a KeyError).
REQUIRED_IN = {'train': ('total_iter', 'optim_g'), 'val': ('val_freq', 'save_img'),
               'logger': ('print_freq', 'save_checkpoint_freq')}


def _check_keys(section, known, where, source):
    if not isinstance(section, dict):
        raise DDRSRError(f'{source}: {where} must be a mapping, got {type(section).__name__}')
    unknown = [k for k in section if k not in known]
    if unknown:
        raise unknown_names_error('key(s)', [f'{where}.{k}' if where else k for k in unknown],
                                  [f'{where}.{k}' if where else k for k in known], where=source)


def _accepted_arguments(cls):
    """Constructor argument names, or None if it takes ``**kwargs`` (anything goes)."""
    params = inspect.signature(cls.__init__).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.name != 'self']


def _check_registered(section, registry, where, source, extra=()):
    if not isinstance(section, dict) or 'type' not in section:
        raise DDRSRError(f'{source}: {where} needs a `type`')
    name = section['type']
    if name not in registry:
        raise unknown_names_error(f'{where}.type', [name], sorted(k for k, _ in registry), where=source)
    accepted = _accepted_arguments(registry.get(name))
    if accepted is not None:
        _check_keys(section, ['type', *accepted, *extra], where, source)
    check_constructor_values(section, registry.get(name), where, source)


def _check_param_group_keys(opt, model_class, source):
    """``train.frozen``/``train.lr_scale`` only where the model reads them (a silently ignored freeze trains all)."""
    from ddrsr.models.param_groups import ParamGroupsMixin

    used = [k for k in ('frozen', 'lr_scale') if (opt.get('train') or {}).get(k)]
    if used and not issubclass(model_class, ParamGroupsMixin):
        raise DDRSRError(f'{source}: train.{used[0]} is read by DDRSRModel only; model_type {opt["model_type"]} '
                         'would ignore it and train every parameter')


def check_options(opt, source='<options>'):
    """Raise DDRSRError naming ``source`` and the key if ``opt`` has an unknown or misspelled key or a wrong type."""
    from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, MODEL_REGISTRY
    from ddrsr import register

    register()  # ddrsr's classes in basicsr's registries

    _check_keys(opt, TOP_KEYS, '', source)
    missing = [k for k in REQUIRED_TOP if k not in opt]
    if missing:
        raise DDRSRError(f'{source}: missing required key(s): {", ".join(missing)}')
    if opt['model_type'] not in MODEL_REGISTRY:
        raise unknown_names_error('model_type', [opt['model_type']], sorted(k for k, _ in MODEL_REGISTRY),
                                  where=source)
    _check_keys(opt['path'], PATH_KEYS, 'path', source)
    _check_param_group_keys(opt, MODEL_REGISTRY.get(opt['model_type']), source)
    for section, known in (('train', TRAIN_KEYS), ('val', VAL_KEYS), ('logger', LOGGER_KEYS)):
        if opt.get(section) is not None:
            _check_keys(opt[section], known, section, source)
            missing = [f'{section}.{k}' for k in REQUIRED_IN[section] if k not in opt[section]]
            if missing:
                raise DDRSRError(f'{source}: missing required key(s): {", ".join(missing)}')
    if (opt.get('val') or {}).get('ddr_chi') is not None:
        from ddrsr.models.ddr_chi_validation import DDR_CHI_KEYS, ddr_chi_settings
        _check_keys(opt['val']['ddr_chi'], DDR_CHI_KEYS, 'val.ddr_chi', source)
        try:
            ddr_chi_settings(opt)
        except DDRSRError as error:
            raise DDRSRError(f'{source}: {error}') from None
    for net in ('network_g', 'network_d'):
        if net in opt:
            _check_registered(opt[net], ARCH_REGISTRY, net, source)
    for loss in LOSS_SECTIONS:
        if (opt.get('train') or {}).get(loss):
            extra = ('vgg_weights', ) if loss == 'perceptual_opt' else ()
            _check_registered(opt['train'][loss], LOSS_REGISTRY, f'train.{loss}', source, extra)
    if opt.get('distill_pool') is not None:
        _check_keys(opt['distill_pool'], DISTILL_POOL_KEYS, 'distill_pool', source)
    if opt.get('degradation') is not None:
        from ddrsr.data.random_degradation import RandomDegradation
        try:
            RandomDegradation.from_options(opt['degradation'])
        except DDRSRError as error:
            raise DDRSRError(f'{source}: {error}') from None
    if not isinstance(opt['datasets'], dict) or not opt['datasets']:
        raise DDRSRError(f'{source}: datasets must map phases (train, val, val_2, ...) to dataset options')
    for phase, dataset in opt['datasets'].items():
        where = f'datasets.{phase}'
        if phase != 'train' and not phase.startswith('val'):
            raise DDRSRError(f'{source}: dataset phase {phase!r} must be `train` or start with `val`')
        if not isinstance(dataset, dict) or 'type' not in dataset:
            raise DDRSRError(f'{source}: {where} needs a `type`')
        if dataset['type'] not in DATASET_REGISTRY:
            raise unknown_names_error(f'{where}.type', [dataset['type']], sorted(k for k, _ in DATASET_REGISTRY),
                                      where=source)
        own_keys = getattr(DATASET_REGISTRY.get(dataset['type']), 'OPTION_KEYS', None)
        if own_keys is not None:  # only ddrsr's datasets declare their keys; BasicSR's are not checked
            _check_keys(dataset, [*LOADER_KEYS, *own_keys], where, source)
    check_value_types(opt, source)
    from ddrsr.models.ema import check_ema_horizon  # here: ddrsr.models registers BasicSR models on import

    check_ema_horizon(opt, source)


def check_option_file(path, check_paths=True):
    """Load ``path`` and check it (with ``check_paths``, also that its dataset folders exist); returns the dict."""
    opt = load_yaml(path)
    check_options(opt, source=path)
    if check_paths:
        check_dataset_paths(opt, source=path)
    return opt
