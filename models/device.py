"""Where torch work runs: CUDA when present, the CPU otherwise (or what the caller asks for)."""

import torch


def pick_device(requested: str | None = None) -> str:
    if requested and requested != "auto":
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"
