"""BasicSR's ``load_network`` made safe and forgiving, for ddrsr's models."""
from basicsr.utils import get_root_logger

from ddrsr.checkpoint import load_state_dict_file


class SafeLoadingMixin:
    """Load checkpoints with ``weights_only=True`` and fall back between ``params`` and ``params_ema``.

    basicsr 1.4.2 unpickles checkpoints without ``weights_only`` and raises a KeyError when the asked-for
    key is missing (ESRGAN / Real-ESRGAN release files hold only ``params_ema``). Here the requested key
    is used when present, otherwise the other one, and fp16 checkpoints are cast back to fp32.
    """

    def load_network(self, net, load_path, strict=True, param_key='params'):
        net = self.get_bare_model(net)
        state = load_state_dict_file(load_path, param_key or 'params')
        get_root_logger().info(f'Loading {net.__class__.__name__} model from {load_path} (param key {param_key}, '
                               'falling back to params/params_ema).')
        self._print_different_keys_loading(net, state, strict)
        net.load_state_dict(state, strict=strict)
