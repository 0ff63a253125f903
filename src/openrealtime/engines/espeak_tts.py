"""espeak-ng speech synthesis in process, for every language espeak knows.

This module owns the ctypes binding to the ``libespeak-ng`` that the ``espeakng-loader`` wheel ships
(library and data both come from that package, so no system espeak is needed) and the
:class:`EspeakSynthesizer` built on it. espeak-ng is one global C library with one current voice and
one synthesis callback per process, so every call into it, from any instance and any thread, holds the
module's single :data:`_ESPEAK_LOCK`. The lock is held for one sentence at a time, never across a
``yield``, so sessions that speak at once take turns sentence by sentence.
"""

from __future__ import annotations

import ctypes
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from openrealtime.audio.types import Samples
from openrealtime.exceptions import EngineError

ESPEAK_SAMPLE_RATE_HZ = 22_050
DEFAULT_LANGUAGE = "en-us"
DEFAULT_RATE_WPM = 175
MIN_RATE_WPM = 80  # espeak-ng's own range of speaking rates
MAX_RATE_WPM = 450
DEFAULT_PITCH = 50  # espeak's 0-100 scale, 50 is the voice's normal pitch
_CALLBACK_BUFFER_MS = 200  # how much audio espeak hands to the callback at a time
_PCM16_FULL_SCALE = 32768.0

# espeak_lib.h enums and flags
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_ESPEAK_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_ESPEAK_CHARS_UTF8 = 1
_ESPEAK_RATE = 1
_ESPEAK_PITCH = 3
_EE_OK = 0
_CALLBACK_CONTINUE = 0
_CALLBACK_ABORT = 1

# Sentence ends (Latin, CJK and Devanagari full stops) followed by space split the text into chunks.
_SENTENCE_END = re.compile(r"(?<=[.!?;。！？।])\s+")


class _EspeakVoice(ctypes.Structure):
    """``espeak_VOICE`` from ``speak_lib.h``."""

    _fields_ = (
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),  # not c_char_p: a list of NUL-terminated names, see below
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    )


_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


@dataclass(frozen=True)
class EspeakOptions:
    """Options of :class:`EspeakSynthesizer`.

    Attributes:
        default_language: Language spoken when ``voice`` is not a language espeak knows (for example an
            OpenAI voice name such as ``"alloy"``).
        rate_wpm: Speaking rate in words per minute (espeak's range is 80-450).
        pitch: Base pitch on espeak's 0-100 scale.
    """

    default_language: str = DEFAULT_LANGUAGE
    rate_wpm: int = DEFAULT_RATE_WPM
    pitch: int = DEFAULT_PITCH


class _Espeak:
    """The process-wide library handle; every method must be called with :data:`_ESPEAK_LOCK` held."""

    def __init__(self) -> None:
        import espeakng_loader  # heavy native library: imported here only

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int)
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = (_SYNTH_CALLBACK,)
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByProperties.argtypes = (ctypes.POINTER(_EspeakVoice),)
        lib.espeak_SetVoiceByProperties.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int)
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_ListVoices.argtypes = (ctypes.c_void_p,)
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_EspeakVoice))
        lib.espeak_Synth.argtypes = (
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        )
        lib.espeak_Synth.restype = ctypes.c_int
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS,
            _CALLBACK_BUFFER_MS,
            espeakng_loader.get_data_path().encode(),
            _ESPEAK_INITIALIZE_DONT_EXIT,
        )
        if rate != ESPEAK_SAMPLE_RATE_HZ:
            raise EngineError(f"espeak-ng failed to initialize (returned {rate})", code="tts_failed")
        self._lib = lib
        # The callback appends into whichever list and stop event the current call installed.
        self._chunks: list[Samples] = []
        self._stop: threading.Event | None = None
        self._callback = _SYNTH_CALLBACK(self._on_audio)  # kept referenced: C holds the pointer
        lib.espeak_SetSynthCallback(self._callback)
        self.languages = self._list_languages()

    def _list_languages(self) -> tuple[str, ...]:
        found: set[str] = set()
        voices = self._lib.espeak_ListVoices(None)
        index = 0
        while voices[index]:
            # ``languages`` is a run of (priority byte, NUL-terminated name), closed by a zero priority.
            address = voices[index].contents.languages
            while address and ctypes.string_at(address, 1) != b"\0":
                name = ctypes.string_at(address + 1)
                found.add(name.decode("ascii", "replace").lower())
                address += 1 + len(name) + 1
            index += 1
        return tuple(sorted(found))

    def _on_audio(self, wav: Any, count: int, events: Any) -> int:
        if count > 0 and wav:
            pcm = np.ctypeslib.as_array(wav, shape=(count,))
            self._chunks.append((pcm.astype(np.float32) / _PCM16_FULL_SCALE).astype(np.float32))
        stop = self._stop
        return _CALLBACK_ABORT if stop is not None and stop.is_set() else _CALLBACK_CONTINUE

    def speak(self, text: str, language: str, rate_wpm: int, pitch: int, stop: threading.Event) -> Samples:
        name = ctypes.create_string_buffer(language.encode("ascii"))
        spec = _EspeakVoice(languages=ctypes.addressof(name))
        if self._lib.espeak_SetVoiceByProperties(ctypes.byref(spec)) != _EE_OK:
            raise EngineError(f"espeak-ng has no voice for language {language!r}", code="tts_failed")
        self._lib.espeak_SetParameter(_ESPEAK_RATE, rate_wpm, 0)
        self._lib.espeak_SetParameter(_ESPEAK_PITCH, pitch, 0)
        data = text.encode("utf-8") + b"\0"
        self._chunks = []
        self._stop = stop
        try:
            status = self._lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _ESPEAK_CHARS_UTF8, None, None)
        finally:
            chunks, self._chunks, self._stop = self._chunks, [], None
        if status != _EE_OK:
            raise EngineError(f"espeak-ng synthesis failed with status {status}", code="tts_failed")
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)


_ESPEAK_LOCK = threading.Lock()
_espeak: _Espeak | None = None


def _library() -> _Espeak:
    """The process-wide espeak-ng, initialized on first use; call with :data:`_ESPEAK_LOCK` held."""
    global _espeak
    if _espeak is None:
        try:
            _espeak = _Espeak()
        except (OSError, AttributeError) as exc:
            raise EngineError(f"cannot load espeak-ng: {exc}", code="tts_failed") from exc
        except ImportError as exc:
            raise EngineError(
                "the espeakng-loader package is not installed; run the set-up (see README)",
                code="model_not_installed",
            ) from exc
    return _espeak


class EspeakSynthesizer:
    """A :class:`~openrealtime.contracts.Synthesizer` for any language, robotic but instant.

    ``voice`` is a language code such as ``"es"``, ``"fr"``, ``"pt-br"`` or ``"en-us"`` (``_`` and
    case are normalized); anything espeak does not know, such as an OpenAI voice name, speaks
    ``options.default_language``. Audio comes sentence by sentence as float32 at 22 050 Hz; a call's
    ``speed`` multiplies ``options.rate_wpm``.

    Args:
        options: Language fallback, rate and pitch.

    Raises:
        EngineError: If the library cannot be loaded or ``options.default_language`` is unknown.
    """

    sample_rate_hz = ESPEAK_SAMPLE_RATE_HZ

    def __init__(self, options: EspeakOptions | None = None) -> None:
        self.options = options or EspeakOptions()
        with _ESPEAK_LOCK:
            self._languages = _library().languages
        self._known = frozenset(self._languages)
        if _normalize(self.options.default_language) not in self._known:
            raise EngineError(
                f"espeak-ng does not know the language {self.options.default_language!r}",
                code="tts_failed",
            )

    def voices(self) -> Sequence[str]:
        """The language codes espeak-ng can speak, sorted."""
        return self._languages

    def resolve_language(self, voice: str) -> str:
        """The espeak language that ``voice`` selects: itself if known, else its base, else the default."""
        code = _normalize(voice)
        if code in self._known:
            return code
        base = _base(code)
        if base in self._known:
            return base
        return _normalize(self.options.default_language)

    def speaks(self, language: str) -> bool:
        """Whether espeak-ng knows ``language`` (or its base): an unknown one would be read with the
        default language's voice, which is not speaking it."""
        return _base(self.resolve_language(language)) == _base(_normalize(language))

    def synthesize(self, text: str, *, voice: str, stop: threading.Event, speed: float = 1.0) -> Iterator[Samples]:
        """Speak ``text`` in the language ``voice``, yielding one chunk per sentence.

        Args:
            text: What to say.
            voice: A language code (see :meth:`voices`).
            stop: Checked between sentences and inside espeak's audio callback.
            speed: Multiplies ``options.rate_wpm`` (kept within espeak-ng's 80-450 words per minute).

        Yields:
            float32 mono audio at :attr:`sample_rate_hz`.

        Raises:
            EngineError: If espeak-ng fails.
        """
        language = self.resolve_language(voice)
        rate_wpm = min(MAX_RATE_WPM, max(MIN_RATE_WPM, round(self.options.rate_wpm * speed)))
        for sentence in _SENTENCE_END.split(text.strip()):
            if stop.is_set():
                return
            if not sentence.strip():
                continue
            with _ESPEAK_LOCK:
                audio = _library().speak(sentence, language, rate_wpm, self.options.pitch, stop)
            if audio.size and not stop.is_set():
                yield audio


def _normalize(voice: str) -> str:
    return voice.strip().lower().replace("_", "-")


def _base(code: str) -> str:
    """``"pt-br"`` -> ``"pt"``, for a normalized code."""
    return code.split("-", 1)[0]
