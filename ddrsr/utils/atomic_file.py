"""Write a file so that readers only ever see the old version or the complete new one."""
import os
import tempfile

from ddrsr.utils.interruption import protected


class AtomicFile:
    """A binary temporary file beside ``path`` that replaces ``path`` when its ``with`` block succeeds.

    The temporary file is created in the constructor, so an unwritable folder raises ``OSError`` there,
    before any work. On success the data is flushed (and fsynced if ``sync``, for files that must survive
    a power loss, such as checkpoints), given normal permissions and moved over ``path`` with one
    ``os.replace``. On any exception, ``kill`` excepted, the temporary file is removed and ``path`` is
    untouched. The hidden ``.<name>.*.tmp`` name never matches ``*.pth``/``*.state`` or image
    extensions, so resume logic and folder scans do not pick it up. Under
    :class:`ddrsr.utils.interruption.StopOnSignal`, Ctrl-C and SIGTERM wait from the temporary file's creation
    to its rename or removal, so a stopped run leaves neither a partial file nor a temporary one.

        with AtomicFile('out.png') as f:
            image.save(f, format='PNG')
    """

    def __init__(self, path, sync=False):
        self.path = os.fspath(path)
        self.sync = sync
        folder = os.path.dirname(os.path.abspath(self.path))
        self._hold = protected()
        self._hold.__enter__()
        try:
            handle, self.temp = tempfile.mkstemp(dir=folder, prefix=f'.{os.path.basename(self.path)}.', suffix='.tmp')
            self.file = os.fdopen(handle, 'wb')
        except BaseException:
            self._hold.__exit__(None, None, None)
            raise

    def __enter__(self):
        return self.file

    def __exit__(self, exc_type, exc, traceback):
        try:
            if exc_type is None:
                self.file.flush()
                if self.sync:
                    os.fsync(self.file.fileno())
            self.file.close()
            if exc_type is None:
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(self.temp, 0o666 & ~umask)  # mkstemp makes 0600 files; give the result normal permissions
                os.replace(self.temp, self.path)
        finally:
            try:
                if os.path.exists(self.temp):
                    os.remove(self.temp)
            finally:
                self._hold.__exit__(None, None, None)
        return False
