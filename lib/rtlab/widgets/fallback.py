"""Static pictures beside every widget display, so a saved notebook shows something where no widget runs.

Layer: views. GitHub, nbviewer and nbconvert cannot run a widget's JavaScript; they show the richest output they
can render from the saved mimebundle. :class:`StaticFallback` adds an ``image/png`` and a short ``text/plain`` to
a widget's ``_repr_mimebundle_`` (the live view keeps ``application/vnd.jupyter.widget-view+json``).

:class:`UpdatingStaticFallback` is for widgets whose content grows after they are shown (``LiveView``,
``Microphone``): they display with a display id and :meth:`~UpdatingStaticFallback.update_static` redraws the
saved picture in place (an IPython ``update_display``; nbclient and JupyterLab replace the output), so the
notebook file ends with the final transcripts or recording rather than the empty first picture.

The pictures are drawn with matplotlib's object API (``Figure``, Agg canvas): no pyplot state, no GUI backend.
"""

from __future__ import annotations

import base64
import io
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


class StaticFallback:
    """Mixin for widgets: ``_repr_mimebundle_`` also carries ``image/png`` (:meth:`static_png`) and ``text/plain``.

    A failing picture never breaks the live widget: the text says why it is missing.
    """

    def static_png(self) -> bytes:  # pragma: no cover - interface
        """PNG bytes of what the widget shows now."""
        raise NotImplementedError

    def static_text(self) -> str:
        """The plain-text line saved with the picture (default: the widget's cheap ``repr``)."""
        return repr(self)

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict, dict]:
        bundle = super()._repr_mimebundle_(**kwargs)  # type: ignore[misc]
        data, meta = bundle if isinstance(bundle, tuple) else (bundle or {}, {})
        data, meta = dict(data), dict(meta or {})
        data["text/plain"] = self.static_text()
        try:
            data["image/png"] = base64.b64encode(self.static_png()).decode()
        except Exception as exc:  # a static picture must never break the live widget
            data["text/plain"] += f" (static picture failed: {type(exc).__name__}: {exc})"
        return data, meta


class UpdatingStaticFallback(StaticFallback):
    """A :class:`StaticFallback` whose saved picture can be redrawn after the widget was displayed."""

    def _ipython_display_(self) -> None:
        from IPython.display import display

        data, meta = self._display_bundle()
        handle = display(data, metadata=meta, raw=True, display_id=True)
        if handle is not None:
            self.__dict__.setdefault("_static_display_ids", []).append(handle.display_id)

    def _display_bundle(self) -> tuple[dict, dict]:
        data, meta = self._repr_mimebundle_()
        html = getattr(self, "_repr_html_", None)
        if callable(html):  # what IPython's formatter would have added beside the mimebundle
            try:
                data.setdefault("text/html", html())
            except Exception:  # the HTML view is a nicety; the picture and the widget are there
                pass
        return data, meta

    def update_static(self) -> int:
        """Redraw the picture (and view) of every display of this widget; returns how many were updated."""
        ids = self.__dict__.get("_static_display_ids") or []
        if not ids:
            return 0
        from IPython.display import update_display

        data, meta = self._display_bundle()
        for display_id in ids:
            update_display(data, metadata=meta, raw=True, display_id=display_id)
        return len(ids)


# --------------------------------------------------------------------------------------------------
# Pictures
# --------------------------------------------------------------------------------------------------
def figure_png(fig: Any, *, dpi: int | None = None) -> bytes:
    """PNG bytes of a matplotlib ``Figure`` (Agg)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def stack_png(parts: Sequence[bytes]) -> bytes:
    """PNG pictures one above the other (left-aligned, white padding), as one PNG."""
    import matplotlib.image as mpimg

    images = []
    for png in parts:
        img = mpimg.imread(io.BytesIO(png), format="png")
        if img.shape[-1] == 3:
            img = np.concatenate([img, np.ones(img.shape[:2] + (1,), dtype=img.dtype)], axis=-1)
        images.append(img.astype(np.float32))
    width = max(i.shape[1] for i in images)
    padded = [np.pad(i, ((0, 0), (0, width - i.shape[1]), (0, 0)), constant_values=1.0) for i in images]
    buf = io.BytesIO()
    mpimg.imsave(buf, np.vstack(padded), format="png")
    return buf.getvalue()


def transcripts_png(transcripts: Mapping[str, Sequence[Mapping[str, Any]]], event_count: int, *,
                    done: bool = False, width: float = 11.0, dpi: int = 90) -> bytes:
    """Transcripts per source as columns of text (finals black, partials grey italic), under an event count."""
    from matplotlib.figure import Figure

    sources = list(transcripts)
    ncol = max(1, len(sources))
    chars = max(16, int(width * 11 / ncol))
    wrapped = {s: [(textwrap.wrap(str(v.get("text") or "…"), chars) or ["…"], bool(v.get("final")))
                   for v in transcripts[s]] for s in sources}
    n_rows = max([sum(len(w) for w, _ in rows) for rows in wrapped.values()] + [1])
    line_h = 0.19
    height = 0.75 + line_h * (n_rows + len(max(wrapped.values(), key=len, default=[])) * 0.3)
    fig = Figure(figsize=(width, height), dpi=dpi)
    y0 = 1 - 0.28 / height
    fig.text(0.01, y0, f"{event_count} events" + (" (done)" if done else ""), fontsize=10, weight="bold",
             va="top")
    if not sources:
        fig.text(0.01, y0 - 0.3 / height, "no transcripts yet", fontsize=9, color="#6e7781", va="top")
    for k, s in enumerate(sources):
        x = 0.01 + k / ncol
        y = y0 - 0.28 / height
        fig.text(x, y, s, fontsize=9, weight="bold", va="top")
        y -= 0.24 / height
        for lines, final in wrapped[s]:
            for line in lines:
                fig.text(x, y, line, fontsize=8.5, va="top", color="#1f2328" if final else "#8c959f",
                         style="normal" if final else "italic")
                y -= line_h / height
            y -= 0.3 * line_h / height
    return figure_png(fig)
