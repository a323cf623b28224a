"""Writing matplotlib figures: the one ``save_figure`` of the analysis, FAIG and results plots."""
import os
import sys


def save_figure(figure, path, dpi=110, tight_layout=False, bbox_inches='tight'):
    """Write ``figure`` to ``path`` (its folder is created) and release it; returns ``path``.

    Works for figures made without pyplot (``matplotlib.figure.Figure``: drawn on an Agg canvas, nothing global
    switched) and for pyplot's (closed afterwards, so a long run does not accumulate them).

    Args:
        dpi (int): resolution.
        tight_layout (bool): lay the axes out first (``Figure.tight_layout``).
        bbox_inches (str | None): ``'tight'`` trims the margins; None keeps the figure's size.
    """
    from matplotlib.backend_bases import FigureCanvasBase
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if type(figure.canvas) is FigureCanvasBase:  # a bare Figure: give it a renderer
        FigureCanvasAgg(figure)
    if tight_layout:
        figure.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    figure.savefig(path, dpi=dpi, bbox_inches=bbox_inches)
    if 'matplotlib.pyplot' in sys.modules:  # only pyplot keeps figures alive; a bare Figure is just garbage
        sys.modules['matplotlib.pyplot'].close(figure)
    return path
