"""``torch.compile`` with an eager fallback: compile where it works, warn once and run eagerly where not."""
import torch


class CompiledFunction:
    """``torch.compile(function)``, or ``function`` itself once compiling has failed (warned about once).

    On CUDA it uses ``mode='reduce-overhead'`` (CUDA graphs): the steps compiled here are hundreds of tiny
    kernels, and launching them is the cost. Outputs are then cloned, because a CUDA graph reuses its output
    memory on the next replay.
    """

    def __init__(self, function, device_type, name=None):
        self.function = function
        self.device_type = device_type
        self.name = name or getattr(function, '__name__', type(function).__name__)
        mode = 'reduce-overhead' if device_type == 'cuda' else None
        self.compiled = torch.compile(function, mode=mode, dynamic=False)

    def __call__(self, *args):
        if self.compiled is not None:
            try:
                out = self.compiled(*args)
                # A CUDA graph reuses its output memory on the next replay; the caller keeps this batch.
                return out.clone() if self.device_type == 'cuda' else out
            except Exception as error:  # compilation runs on the first call for each shape
                import warnings

                first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
                warnings.warn(f'torch.compile of {self.name} failed ({first}); '
                              'running it eagerly from now on', RuntimeWarning)
                self.compiled = None
        return self.function(*args)


_COMPILED = {}


def compiled_or_eager(function, device):
    """A cached :class:`CompiledFunction` of ``function`` for ``device``'s type (one per function and type)."""
    key = (function, torch.device(device).type)
    if key not in _COMPILED:
        _COMPILED[key] = CompiledFunction(function, key[1])
    return _COMPILED[key]
