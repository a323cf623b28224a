"""Start and stop the ``ddrsr serve`` web server: localhost by default, one temporary folder, removed on stop."""
import dataclasses
import os
import signal
import sys

from ddrsr.errors import DDRSRError

#: Hosts that only this machine can reach.
LOCAL_HOSTS = ('127.0.0.1', 'localhost', '::1')
#: Largest upload Gradio accepts, in bytes: well above a 16 MP photo even as an uncompressed TIFF (48 MB).
MAX_FILE_SIZE = 200 * 1024 * 1024


@dataclasses.dataclass
class Server:
    """A running page: its ``url``; :meth:`close` stops it and removes the engine's temporary folder."""

    url: str
    app: object
    engine: object
    _saved_temp_dir: str | None

    def close(self):
        try:
            self.app.close()
        finally:
            if self._saved_temp_dir is None:
                os.environ.pop('GRADIO_TEMP_DIR', None)
            else:
                os.environ['GRADIO_TEMP_DIR'] = self._saved_temp_dir
            self.engine.close()


def startup_message(url, host):
    """What ``ddrsr serve`` prints when it is ready: where to go, and who else can reach it."""
    if host in LOCAL_HOSTS:
        reach = (f'listening on {host} only: other machines cannot connect (pass --host 0.0.0.0 to let them; '
                 'there is no password)')
    else:
        reach = (f'listening on {host}: other machines that can reach this port can upload photos and use this '
                 'computer\'s processor; there is no password (the default --host 127.0.0.1 keeps it to this machine)')
    return f'ddrsr serve: open {url} in a browser; {reach}. Ctrl+C stops it.'


def start(engine, host='127.0.0.1', port=7860):
    """Launch the page for ``engine`` without blocking; returns a :class:`Server`.

    Gradio's upload cache is pointed into the engine's temporary folder, so uploads, results and Gradio's
    own copies all live in the one folder that :meth:`Server.close` removes.
    """
    try:
        from ddrsr.serve.app import build_app, theme
    except ImportError as error:
        raise DDRSRError(f'ddrsr serve needs the web extra ({error}); install it with: pip install -e ".[web]" '
                         '(from a ddrsr checkout), or pip install "gradio>=5"') from None
    saved = os.environ.get('GRADIO_TEMP_DIR')
    os.environ['GRADIO_TEMP_DIR'] = engine.workdir  # read by Gradio when the page is built and on each upload
    try:
        app = build_app(engine)
        app.queue(default_concurrency_limit=1)
        try:
            _, url, _ = app.launch(server_name=host, server_port=port, prevent_thread_lock=True, quiet=True,
                                   share=False, show_error=False, max_file_size=MAX_FILE_SIZE, theme=theme(),
                                   ssr_mode=False)
        except OSError as error:
            raise DDRSRError(f'cannot listen on {host}:{port} ({error}); choose another --port') from None
    except BaseException:
        if saved is None:
            os.environ.pop('GRADIO_TEMP_DIR', None)
        else:
            os.environ['GRADIO_TEMP_DIR'] = saved
        raise
    return Server(url.rstrip('/'), app, engine, saved)


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def _stop_on_signals():
    """Ctrl+C (SIGINT) and SIGTERM both stop the page through its KeyboardInterrupt path.

    A process started in the background by a non-interactive shell (``nohup ... &``, a CI step) inherits SIGINT
    as *ignored*, and Python then never raises KeyboardInterrupt, so Ctrl+C-style stops were silently dropped;
    service managers (systemd, docker) stop with SIGTERM.
    """
    signal.signal(signal.SIGINT, _raise_keyboard_interrupt)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)


def serve_forever(engine, host='127.0.0.1', port=7860):
    """Start the page, print :func:`startup_message` on stderr and block until Ctrl+C; always cleans up."""
    server = start(engine, host, port)
    try:
        _stop_on_signals()
        print(startup_message(server.url, host), file=sys.stderr, flush=True)
        server.app.block_thread()
    finally:
        server.close()
