"""Reading BasicSR option files (YAML) exactly as BasicSR does; a low layer that loaders and checkers share."""
import yaml

from ddrsr.errors import DDRSRError


def load_yaml(path):
    """Parse ``path`` exactly as BasicSR will (its loader has no YAML merge keys, ``<<``)."""
    from basicsr.utils.options import ordered_yaml

    try:
        with open(path) as f:
            opt = yaml.load(f, Loader=ordered_yaml()[0])
    except FileNotFoundError:
        raise DDRSRError(f'option file {path!r} not found') from None
    except yaml.YAMLError as error:
        raise DDRSRError(f'option file {path!r} is not valid YAML: {error}') from None
    if not isinstance(opt, dict):
        raise DDRSRError(f'option file {path!r} must hold a mapping of options')
    return opt


def network_options(path):
    """``(network_g option dict, scale)`` of BasicSR option file ``path``; DDRSRError without a ``network_g.type``."""
    options = load_yaml(path)
    network = options.get('network_g')
    if not isinstance(network, dict) or 'type' not in network:
        raise DDRSRError(f'option file {path!r} has no network_g with a `type`')
    scale = options.get('scale') or network.get('upscale') or network.get('scale') or 4
    return dict(network), int(scale)
