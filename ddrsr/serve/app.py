"""The Gradio page of ``ddrsr serve``: a thin layer of widgets over :class:`~ddrsr.serve.engine.ServeEngine`.

Every event that touches the model shares one queue slot (``concurrency_id='model'``), so requests from
several tabs or clients wait their turn, and the page shows their place in the queue. Handlers turn errors
into messages on the page: a ``DDRSRError`` is shown as it is (it says what to do); anything else is
logged with its traceback on the server's terminal and shown as one line.
"""
import logging
import os
import threading

import gradio as gr

from ddrsr.errors import DDRSRError
from ddrsr.inspection.inspector import describe
from ddrsr.serve.engine import REPORT_COLUMNS, RESULT_AGE, JobCancelled, report_row

logger = logging.getLogger('ddrsr.serve')

INTRO = """# ddrsr: blind super-resolution ×4
Drop one or more photos. For each, the table reads what is wrong with it (`ddrsr inspect`). Pick a photo, set the
strength while watching the preview, then upscale it and download the full-size result. Everything runs on this
computer; the photos go nowhere else."""
#: System fonts only: the default theme would fetch its fonts from Google, which a local tool should not do.
THEME_FONTS = dict(font=['ui-sans-serif', 'system-ui', 'sans-serif'], font_mono=['ui-monospace', 'monospace'])


def user_message(error):
    """One line for the page: a DDRSRError's own text, or a bug report hint (the traceback goes to the log)."""
    if isinstance(error, DDRSRError):
        return str(error)
    logger.error('ddrsr serve: unexpected error', exc_info=error)
    first_line = str(error).splitlines()[0] if str(error) else ''
    return (f'something went wrong ({type(error).__name__}: {first_line}); this looks like a bug: please report it '
            'with the photo (the server\'s terminal has the details)')


def _markdown_text(text):
    """``text`` with Markdown's emphasis and code characters escaped (file names often contain ``_``)."""
    for character in '\\`*_[]<>#':
        text = text.replace(character, '\\' + character)
    return text


def _warnings(messages):
    return '\n'.join(f'- ⚠️ {_markdown_text(m)}' for m in messages)


def _selected(files, choice):
    """The path of the photo chosen in the drop-down (its index among the uploads), or DDRSRError."""
    files = files or []
    if choice is None or not isinstance(choice, int) or not 0 <= choice < len(files):
        raise DDRSRError('choose a photo first: drop one on the page or click the upload box')
    return files[choice]


def build_app(engine):
    """The ``gr.Blocks`` page for ``engine``; launch it with :func:`ddrsr.serve.server.start`."""
    running = {}  # session -> threading.Event of its running upscale, set by the Cancel button

    def on_photos(files, progress=gr.Progress()):
        files = files or []
        reports = engine.inspect(files, on_progress=lambda done, total: progress((done, total), desc='Inspecting',
                                                                                   unit='photos'))
        good = [(index, report) for index, report in enumerate(reports) if report.result]
        rows = [report_row(report.result) for _, report in good]
        summaries = {index: {'strength': report.result['recommended_strength'],
                             'text': '\n'.join(describe(report.result))} for index, report in good}
        choice = good[0][0] if good else None
        return (rows, _warnings([report.error for report in reports if report.error]),
                gr.update(choices=[(report.name, index) for index, report in good], value=choice),
                summaries, *_select(summaries, choice))

    def _select(summaries, choice):
        summary = summaries.get(choice)
        if summary is None:
            return gr.update(), ''
        return summary['strength'], summary['text']

    def on_choice(summaries, choice):
        return _select(summaries or {}, choice)

    def on_preview(files, choice, strength):
        if not files or choice is None:
            return None
        try:
            return engine.preview(_selected(files, choice), strength)
        except Exception as error:  # the page shows the message; the preview stays empty
            raise gr.Error(user_message(error), print_exception=False) from None

    def on_upscale(files, choice, strength, request: gr.Request, progress=gr.Progress()):
        cancel = threading.Event()
        running[request.session_hash] = cancel
        try:
            path = _selected(files, choice)
            result = engine.upscale(path, strength, cancel=cancel, on_progress=lambda done, total: progress(
                (done, total), desc='Upscaling', unit='tiles'))
        except JobCancelled as error:
            return f'Cancelled: {error}', None, None
        except Exception as error:  # a message on the page instead of a stack trace
            return f'⚠️ {_markdown_text(user_message(error))}', None, None
        finally:
            if running.get(request.session_hash) is cancel:
                del running[request.session_hash]
        status = (f'{_markdown_text(os.path.basename(path))}: {result.width}×{result.height} at strength '
                  f'{result.strength:g} in {result.seconds:.1f} s. Download the full-size file below '
                  '(EXIF and ICC kept).')
        return status, (result.before, result.after), result.path

    def on_cancel(request: gr.Request):
        cancel = running.get(request.session_hash)
        if cancel is None:
            return 'Nothing to cancel.'
        cancel.set()  # the job stops before its next tile and removes what it wrote
        return 'Cancelled; nothing was written.'

    with gr.Blocks(title='ddrsr', analytics_enabled=False, delete_cache=(RESULT_AGE, RESULT_AGE)) as app:
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(scale=2):
                photos = gr.File(label='Photos', file_count='multiple', file_types=['image'], elem_id='photos')
                messages = gr.Markdown(elem_id='messages')
            with gr.Column(scale=5):
                report = gr.Dataframe(headers=REPORT_COLUMNS, label='ddrsr inspect: what is wrong with each photo '
                                      '(σ on 0-255; blur σ in pixels; strength: the recommended one)',
                                      interactive=False, wrap=True, elem_id='report',
                                      column_widths=['18%', '9%', '19%', '8%', '9%', '9%', '9%', '11%', '8%'])
                with gr.Row():
                    choice = gr.Dropdown(label='Photo to upscale', choices=[], elem_id='choice')
                    strength = gr.Slider(0, 1.5, value=1, step=0.05, label='Strength', elem_id='strength',
                                         info='0 treats the photo as clean, 1 as its own degradation, 1.5 restores '
                                              'harder; set to the recommended value when a photo is chosen')
                details = gr.Textbox(label='Inspect report of the chosen photo', lines=6, interactive=False,
                                     elem_id='details')
        with gr.Row():
            preview = gr.ImageSlider(label=f'Preview at this strength: centre crop, bicubic | ddrsr ×{engine.scale}',
                                     interactive=False, format='png', elem_id='preview')
            with gr.Column():
                with gr.Row():
                    run = gr.Button(f'Upscale ×{engine.scale}', variant='primary', elem_id='run')
                    stop = gr.Button('Cancel', variant='stop', elem_id='cancel')
                status = gr.Markdown(elem_id='status')
                download = gr.File(label='Full-size result', interactive=False, elem_id='download')
        result = gr.ImageSlider(label='Result: bicubic | ddrsr (drag to compare)', interactive=False,
                                format='png', elem_id='result')
        summaries = gr.State({})

        model = dict(concurrency_id='model', concurrency_limit=1)
        photos.change(on_photos, photos, [report, messages, choice, summaries, strength, details], **model,
                      api_name='inspect').then(on_preview, [photos, choice, strength], preview, **model,
                                               api_name=False)
        choice.input(on_choice, [summaries, choice], [strength, details], api_name=False).then(
            on_preview, [photos, choice, strength], preview, **model, api_name=False)
        strength.input(on_preview, [photos, choice, strength], preview, trigger_mode='always_last', **model,
                       api_name='preview')
        upscale = run.click(on_upscale, [photos, choice, strength], [status, result, download], **model,
                            api_name='upscale')
        stop.click(on_cancel, None, status, cancels=[upscale], queue=False, api_name='cancel')
    return app


def theme():
    return gr.themes.Default(**THEME_FONTS)
