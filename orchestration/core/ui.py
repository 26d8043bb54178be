"""What the Dagster UI shows besides numbers: PNG charts inline in an asset's metadata."""

from __future__ import annotations

import base64
from pathlib import Path

import dagster as dg
import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

from orchestration.core.files import atomic_file  # noqa: E402


def png_markdown(path: Path) -> dg.MetadataValue:
    """A PNG shown inline in the Dagster UI's metadata panel."""
    return dg.MetadataValue.md(
        f"![{path.stem}](data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()})"
    )


def save_chart(fig, path: Path, dpi: int = 110) -> Path:
    """Write a matplotlib figure as PNG (temp file + rename: never a half-written chart) and close it."""
    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
    return path
