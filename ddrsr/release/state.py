"""The release command's small JSON state: the plan, and each stage's progress, written atomically."""
import json
import os

from ddrsr.utils.atomic_file import AtomicFile
from ddrsr.errors import DDRSRError

STATE_NAME = 'release_state.json'
VERSION = 1


class ReleaseState(dict):
    """A dict persisted to ``<out>/release_state.json``; :meth:`save` replaces the file in one rename.

    Keys: ``version``, ``budget``, ``device``, ``calibration``, ``plan``, ``stages`` (``{key: {'status':
    'pending'|'trained'|'exported', 'wall_s', 'segments', ...}}``), ``evaluation`` and ``shipped``.
    """

    def __init__(self, out):
        super().__init__()
        self.path = os.path.join(out, STATE_NAME)
        if os.path.exists(self.path):
            try:
                with open(self.path, encoding='utf-8') as f:
                    self.update(json.load(f))
            except (OSError, ValueError) as error:
                raise DDRSRError(f'cannot read {self.path} ({error}); delete it to plan the run afresh') from None
            if self.get('version') != VERSION:
                raise DDRSRError(f'{self.path} was written by another version of train_release; use a new --output')
        else:
            self['version'] = VERSION

    def stage(self, key):
        return self.setdefault('stages', {}).setdefault(key, {'status': 'pending', 'wall_s': 0.0, 'segments': 0})

    def save(self):
        with AtomicFile(self.path, sync=True) as f:
            f.write(json.dumps(self, indent=1, sort_keys=False).encode())
