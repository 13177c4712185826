"""PNG figures: matplotlib without a display, written atomically, closed after saving."""

from __future__ import annotations

from pathlib import Path

from gsasrec.files import atomic_path


def subplots(*args, **kwargs):
    """matplotlib's plt.subplots on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def save_figure(figure, path: str | Path) -> Path:
    """Write `figure` as a PNG (never half-written) and free it."""
    import matplotlib.pyplot as plt

    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png")
    plt.close(figure)
    return Path(path)
