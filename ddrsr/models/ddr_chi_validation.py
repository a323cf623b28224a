"""Opt-in DDR-CHI logging during BasicSR validation: watch degradation clustering grow while training.

Enable it in an option file::

    val:
      val_freq: 500
      save_img: false
      ddr_chi: {layer: body.7, specs: [clean, blur2, noise20], patches: 100}   # or layer: [body.7, upconv1]

At every validation (once per iteration, however many validation sets there are) the network that
BasicSR validates (``net_g_ema`` when it exists, else ``net_g``) is read at ``layer``; the CHI of its
features over the spec sets is logged (``DDR-CHI ...`` in the log, ``ddr_chi/<layer>`` in tensorboard).
The patches are cut once, from ``dataroot`` (default: the validation set's ``dataroot_gt`` and
``meta_info``). The layer name is checked when the model is built, so a typo fails before training.
"""
from basicsr.utils import get_root_logger

from ddrsr.errors import DDRSRError

DDR_CHI_KEYS = ('layer', 'specs', 'patches', 'patch', 'runs', 'dataroot', 'meta_info', 'seed')
DEFAULTS = {'specs': ['clean', 'blur2', 'noise20'], 'patches': 100, 'patch': 32, 'runs': 1, 'seed': 0}


def ddr_chi_settings(opt):
    """The ``val.ddr_chi`` block with defaults filled in, or None when it is absent (the hook is off)."""
    block = (opt.get('val') or {}).get('ddr_chi')
    if block is None:
        return None
    if not isinstance(block, dict) or not block.get('layer'):
        raise DDRSRError('val.ddr_chi needs at least `layer` (e.g. {layer: body.7}, or a list of layers); optional: '
                         + ', '.join(k for k in DDR_CHI_KEYS if k != 'layer'))
    settings = {**DEFAULTS, **block}
    layers = settings['layer']
    settings['layers'] = [layers] if isinstance(layers, str) else list(layers)
    from ddrsr.data.degradations import parse_spec

    if not isinstance(settings['specs'], (list, tuple)) or len(settings['specs']) < 2:
        raise DDRSRError(f'val.ddr_chi.specs must list at least two named degradations, got {settings["specs"]!r}')
    for spec in settings['specs']:
        parse_spec(spec)  # an unknown spec fails when the options are checked, not mid-training
    return settings


class DDRChiValidationMixin:
    """Adds the ``val.ddr_chi`` hook to a BasicSR model (place it before the BasicSR base class)."""

    def _ddr_chi_network(self):
        return self.get_bare_model(self.net_g_ema if hasattr(self, 'net_g_ema') else self.net_g)

    def init_training_settings(self):
        super().init_training_settings()
        settings = ddr_chi_settings(self.opt)
        if settings:
            from ddrsr.archs.module_utils import get_layer

            for layer in settings['layers']:
                get_layer(self._ddr_chi_network(), layer)

    def validation(self, dataloader, current_iter, tb_logger, save_img=False):
        super().validation(dataloader, current_iter, tb_logger, save_img)
        settings = ddr_chi_settings(self.opt)
        if not settings or self.opt.get('rank', 0) != 0 or getattr(self, '_ddr_chi_iter', None) == current_iter:
            return
        self._ddr_chi_iter = current_iter
        self.log_ddr_chi(settings, dataloader, current_iter, tb_logger)

    def log_ddr_chi(self, settings, dataloader, current_iter, tb_logger=None):
        """Compute CHI at each of ``settings['layers']`` on the cached spec sets; log it and return the scores
        (one dict per layer, by layer name)."""
        from ddrsr.analysis import analyze_layer, hr_patch_sets
        from ddrsr.analysis.scores import format_score

        if getattr(self, '_ddr_chi_sets', None) is None:
            dataset_opt = getattr(dataloader.dataset, 'opt', {}) or {}
            root = settings.get('dataroot') or dataset_opt.get('dataroot_gt')
            if not root:
                raise DDRSRError('val.ddr_chi needs `dataroot` (an HR folder) when the validation set has no '
                                 'dataroot_gt')
            meta_info = settings.get('meta_info') if settings.get('dataroot') else dataset_opt.get('meta_info')
            self._ddr_chi_sets = hr_patch_sets(root, settings['specs'], int(settings['patch']),
                                               int(self.opt['scale']), int(settings['patches']),
                                               int(settings['seed']), meta_info)
        scores = {}
        for layer in settings['layers']:
            analysis = analyze_layer(self._ddr_chi_network(), layer, self._ddr_chi_sets,
                                     runs=int(settings['runs']), device=self.device, progress=False)
            chi = analysis.scores['chi']
            names = '/'.join(self._ddr_chi_sets)
            get_root_logger().info(f'DDR-CHI {layer} ({names}, {len(analysis.labels)} patches) '
                                   f'@ iter {current_iter}: {format_score(chi)}')
            if tb_logger:
                tb_logger.add_scalar(f'ddr_chi/{layer}', chi['mean'], current_iter)
            scores[layer] = analysis.scores
        return scores
