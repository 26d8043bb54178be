"""Where torch work runs: CUDA when present, the CPU otherwise (or what the caller asks for)."""

from collections.abc import Iterator
from contextlib import contextmanager

import torch


def pick_device(requested: str | None = None) -> str:
    if requested and requested != "auto":
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run a block on `threads` CPU threads and give the process its previous count back after
    (a setting of one step, not of the whole process)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
