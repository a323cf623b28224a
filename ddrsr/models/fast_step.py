"""A training step without per-step overhead: one foreach EMA update, mixed precision, channels-last, compile.

Option keys (all in ``train:``, all optional, all off by default)::

    train:
      amp: bf16            # bf16 | fp16 | ~   (autocast; fp16 adds a GradScaler)
      channels_last: true  # NHWC memory format for the generator and its input
      compile: true        # torch.compile of the generator's training forward

Each falls back, with one warning, where it does not apply (fp16 autocast in a GAN step, compile
without a working compiler, ...). The EMA update is always the foreach one. Losses stay on the device
between log steps (:class:`~ddrsr.models.crash_safe.CrashSafeMixin`).
"""
import contextlib
import warnings

import torch

AMP_DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}


def ema_pairs(net, net_ema, frozen_too=False):
    """``(ema_tensors, tensors)`` of the parameters that train: frozen ones never change, so they are skipped
    (averaging them would only let float rounding drift them)."""
    params = dict(net.named_parameters())
    ema, new = [], []
    for name, ema_param in net_ema.named_parameters():
        param = params[name]
        if param.requires_grad or frozen_too:
            ema.append(ema_param.data)
            new.append(param.data)
    return ema, new


def foreach_ema_(ema_tensors, tensors, decay):
    """``ema = decay * ema + (1 - decay) * new`` for every tensor at once (two foreach calls in all).

    >>> ema, new = [torch.zeros(2)], [torch.ones(2)]
    >>> foreach_ema_(ema, new, 0.75); ema[0].tolist()
    [0.25, 0.25]
    """
    if ema_tensors:
        torch._foreach_mul_(ema_tensors, decay)
        torch._foreach_add_(ema_tensors, tensors, alpha=1 - decay)


class FastStepMixin:
    """Adds ``train.amp``, ``train.channels_last`` and ``train.compile`` and a foreach EMA to a BasicSR model.

    Place it before the BasicSR base class. It replaces SRModel's ``optimize_parameters``; a GAN model
    (two optimizers in one step) sets ``full_fast_step = False``, keeps its own step inside
    :meth:`autocast`, and gets bf16 autocast, channels-last and the EMA, with a warning that fp16 and
    compile do not apply to it.
    """

    #: Whether this model's optimize_parameters supports a GradScaler and a compiled forward.
    full_fast_step = True

    def init_training_settings(self):
        from ddrsr.models.ema import resolve_ema_decay

        resolve_ema_decay(self.opt['train'])  # `ema_decay: auto` -> a number, before BasicSR's settings read it
        super().init_training_settings()
        train = self.opt['train']
        self._amp_dtype = self._amp_setting(train.get('amp'))
        self._grad_scaler = None
        if self._amp_dtype == torch.float16:
            self._grad_scaler = torch.amp.GradScaler(self.device.type)
        self._channels_last = bool(train.get('channels_last'))
        if self._channels_last:
            self.net_g.to(memory_format=torch.channels_last)
        self._forward_g = self.net_g
        if train.get('compile'):
            self._forward_g = self._compiled_generator()

    def _warn(self, message):
        from basicsr.utils import get_root_logger

        get_root_logger().warning(message)
        warnings.warn(message, RuntimeWarning)

    def _amp_setting(self, amp):
        if amp in (None, False, 'fp32', 'none'):
            return None
        if amp not in AMP_DTYPES:
            from ddrsr.errors import DDRSRError

            raise DDRSRError(f'train.amp must be bf16, fp16 or ~ (off), got {amp!r}')
        if amp == 'fp16' and not self.full_fast_step:
            self._warn(f'train.amp: fp16 needs a GradScaler step that {type(self).__name__} (a GAN step) does not '
                       'have; training in fp32. Use train.amp: bf16 instead')
            return None
        if amp == 'fp16' and self.device.type == 'cpu':
            self._warn('train.amp: fp16 is not supported for training on the CPU; training in fp32 '
                       '(train.amp: bf16 works there)')
            return None
        return AMP_DTYPES[amp]

    def _compiled_generator(self):
        if not self.full_fast_step:
            self._warn(f'train.compile applies to the generator step of SR models, not to {type(self).__name__}; '
                       'training eagerly')
            return self.net_g
        from ddrsr.utils.compile_fallback import CompiledFunction

        # The compiled callable shares the generator's parameters; checkpoints still come from net_g itself.
        return CompiledFunction(self.net_g, self.device.type, name='the generator')

    def autocast(self):
        """Autocast to ``train.amp``'s dtype, or nothing when it is off."""
        if getattr(self, '_amp_dtype', None) is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self._amp_dtype)

    def feed_data(self, data):
        super().feed_data(data)
        if getattr(self, '_channels_last', False) and self.lq.dim() == 4:
            self.lq = self.lq.contiguous(memory_format=torch.channels_last)

    def optimize_parameters(self, current_iter):
        """BasicSR's SRModel step (pixel and perceptual losses), with autocast, a GradScaler and the fast EMA."""
        from collections import OrderedDict

        self.optimizer_g.zero_grad(set_to_none=True)
        with self.autocast():
            self.output = self._forward_g(self.lq)
            loss_dict = OrderedDict()
            l_total = 0
            if self.cri_pix:
                loss_dict['l_pix'] = self.cri_pix(self.output.float(), self.gt)
                l_total = l_total + loss_dict['l_pix']
            if self.cri_perceptual:
                l_percep, l_style = self.cri_perceptual(self.output.float(), self.gt)
                for name, value in (('l_percep', l_percep), ('l_style', l_style)):
                    if value is not None:
                        loss_dict[name] = value
                        l_total = l_total + value
            for name, value in self.extra_losses(self.output).items():
                loss_dict[name] = value
                l_total = l_total + value
        if self._grad_scaler is not None:
            self._grad_scaler.scale(l_total).backward()
            self._grad_scaler.step(self.optimizer_g)
            self._grad_scaler.update()
        else:
            l_total.backward()
            self.optimizer_g.step()
        self.log_dict = self.reduce_loss_dict(loss_dict)
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)

    def extra_losses(self, output):
        """``{name: loss}`` added to the pixel and perceptual ones; other mixins (distillation) extend it."""
        return {}

    def model_ema(self, decay=0.999):
        """BasicSR's EMA of the generator in two foreach calls, over the parameters that train only.

        ``decay == 0`` (BasicSR's initial copy into ``net_g_ema``) copies every parameter, frozen ones too.
        """
        if decay == 0:
            foreach_ema_(*ema_pairs(self.get_bare_model(self.net_g), self.net_g_ema, frozen_too=True), 0)
            return
        pairs = getattr(self, '_ema_pairs', None)
        if pairs is None:
            pairs = self._ema_pairs = ema_pairs(self.get_bare_model(self.net_g), self.net_g_ema)
        foreach_ema_(*pairs, decay)
