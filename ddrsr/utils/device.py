"""Device choice shared by every layer (library and command line): ``auto`` -> CUDA when there is one."""
import torch

from ddrsr.errors import DDRSRError


def resolve_device(device='auto'):
    """``'auto'`` -> CUDA when available, else CPU; DDRSRError for a CUDA request on a machine without one.

    >>> resolve_device('cpu')
    device(type='cpu')
    """
    if device in (None, 'auto'):
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        device = torch.device(device)
    except RuntimeError:
        raise DDRSRError(f'unknown device {device!r}; use auto, cpu or cuda') from None
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise DDRSRError('--device cuda was asked for but torch sees no CUDA GPU; use --device cpu')
    return device
