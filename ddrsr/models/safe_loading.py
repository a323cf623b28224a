"""BasicSR's ``load_network`` made safe and forgiving, for ddrsr's models."""
from basicsr.utils import get_root_logger

from ddrsr.weights.checkpoint import load_state_dict_file


class SafeLoadingMixin:
    """Load checkpoints with ``weights_only=True`` and fall back between ``params`` and ``params_ema``.

    basicsr 1.4.2 unpickles checkpoints without ``weights_only`` and raises a KeyError when the asked-for
    key is missing (ESRGAN / Real-ESRGAN release files hold only ``params_ema``). Here the requested key
    is used when present, otherwise the other one, and fp16 checkpoints are cast back to fp32.

    ``path.param_key_g_exclude`` (a list of key prefixes) leaves those parameters out of ``pretrain_network_g``:
    they keep the new network's initialisation. Use it to reuse a trunk while a part that reads a changed
    input starts afresh, e.g. ``[encoder.mlp, style_mods]`` when the DDR encoder is replaced. Loading is then
    non-strict for those keys only. (The name holds ``param_key`` because BasicSR creates a folder for every
    ``path`` entry whose name lacks one of a few such words.)
    """

    def load_network(self, net, load_path, strict=True, param_key='params'):
        net = self.get_bare_model(net)
        state = load_state_dict_file(load_path, param_key or 'params')
        get_root_logger().info(f'Loading {net.__class__.__name__} model from {load_path} (param key {param_key}, '
                               'falling back to params/params_ema).')
        path_opt = getattr(self, 'opt', {}).get('path') or {}
        ignored = tuple(path_opt.get('param_key_g_exclude') or ())
        if ignored and load_path == path_opt.get('pretrain_network_g'):
            state = {k: v for k, v in state.items() if not k.startswith(ignored)}
            # From net_g for both nets, so that net_g_ema starts equal to net_g instead of at another random init.
            source = self.get_bare_model(self.net_g).state_dict()
            own = {k: v for k, v in source.items() if k.startswith(ignored)}
            get_root_logger().info(f'Not loading {len(own)} tensors under {", ".join(ignored)} (path.param_key_g_exclude): '
                                   'they keep their initialisation.')
            state.update(own)
        self._print_different_keys_loading(net, state, strict)
        net.load_state_dict(state, strict=strict)
