"""The default LLM's Q8_0 copy of the shipped Q4_1 file: made once into the cache, checked, remade."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from openrealtime.engines import model_files
from openrealtime.exceptions import EngineError

pytestmark = pytest.mark.real


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OPENREALTIME_CACHE", str(tmp_path))
    return tmp_path


def test_the_copy_is_made_once_and_then_only_checked(cache: Path) -> None:
    made = model_files.smollm2_q8_gguf()
    assert made == cache / model_files.SMOLLM2_Q8_0_NAME
    assert made.read_bytes()[:4] == b"GGUF"
    source_sha, copy_sha = (cache / (made.name + ".sha256")).read_text().split()
    assert source_sha == model_files.SMOLLM2_135M_Q4_1_SHA256
    assert model_files.verify_sha256(made, copy_sha) == made
    mtime = made.stat().st_mtime_ns
    assert model_files.smollm2_q8_gguf() == made
    assert made.stat().st_mtime_ns == mtime  # not made again
    assert not list(cache.glob("*.tmp"))


def test_a_damaged_copy_is_made_again(cache: Path) -> None:
    made = model_files.smollm2_q8_gguf()
    good = made.read_bytes()
    with open(made, "r+b") as f:
        f.seek(len(good) // 2)
        f.write(b"\0" * 64)
    os.utime(made, ns=(made.stat().st_atime_ns, made.stat().st_mtime_ns + 1))
    assert model_files.smollm2_q8_gguf().read_bytes() == good


def test_where_llama_cpp_cannot_make_the_copy_the_llm_runs_the_shipped_file(
    cache: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refused(source: Path, target: Path, ftype: int) -> None:
        raise EngineError("llama.cpp could not re-quantize it (code 1)", code="model_load_failed")

    monkeypatch.setattr(model_files, "_requantize", refused)
    with caplog.at_level(logging.WARNING):
        assert model_files.smollm2_q8_gguf() == model_files.smollm2_gguf()
    assert "shipped Q4_1 file" in caplog.text


def test_where_the_cache_cannot_be_written_the_llm_runs_the_shipped_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("OPENREALTIME_CACHE", str(tmp_path / "a-file" / "cache"))  # no folder can be made there
    assert model_files.smollm2_q8_gguf() == model_files.smollm2_gguf()
