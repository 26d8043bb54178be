"""Terminal progress bars (count, rate, ETA) for the long stages, beside their log lines.

    with bar(len(todo), "user profiles", "profile") as progress:
        ... progress.update(len(chunk))

Drawn on stderr only when it is a terminal (`reclake demo` in a shell); in the Dagster UI, tests and
CI the log lines alone say how far a stage is. RECLAKE_PROGRESS=0 turns the bars off, =1 forces them.
"""

import os
import sys

from tqdm import tqdm


def bar(total: int, desc: str, unit: str) -> tqdm:
    forced = os.environ.get("RECLAKE_PROGRESS")
    show = sys.stderr.isatty() if forced is None else forced == "1"
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        disable=not show,
        mininterval=1.0,
        dynamic_ncols=True,
        file=sys.stderr,
    )
