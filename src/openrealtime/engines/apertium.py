"""Rule-based machine translation with Debian's Apertium, one ``apertium`` pipeline per call.

This module owns :class:`ApertiumTranslator`: discovering the installed translation modes
(``apertium -l``), mapping ISO-639-1 codes onto Apertium's language codes (3-letter ISO-639-3 in
current pairs such as ``eng-spa``, 2-letter in older ones such as ``en-gl``), running the pipeline with
a timeout, and cleaning Apertium's markers out of its output. Process failures become
:class:`EngineError` in :meth:`ApertiumTranslator._run`. Without Apertium installed the translator
supports nothing and never fails at construction.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from openrealtime.exceptions import EngineError

DEFAULT_TIMEOUT_S = 10.0
_LIST_TIMEOUT_S = 10.0
_STDERR_MAX_CHARS = 200

#: ISO-639-1 -> the ISO-639-3 code Apertium's pair names use.
ISO_639_1_TO_APERTIUM: Mapping[str, str] = {
    "af": "afr", "an": "arg", "ar": "ara", "be": "bel", "bg": "bul", "br": "bre", "bs": "bos",
    "ca": "cat", "co": "cos", "cs": "ces", "cy": "cym", "da": "dan", "de": "deu", "el": "ell",
    "en": "eng", "eo": "epo", "es": "spa", "eu": "eus", "fo": "fao", "fr": "fra", "ga": "gle",
    "gd": "gla", "gl": "glg", "he": "heb", "hi": "hin", "hr": "hrv", "id": "ind", "is": "isl",
    "it": "ita", "kk": "kaz", "mk": "mkd", "ms": "msa", "mt": "mlt", "nb": "nob", "nl": "nld",
    "nn": "nno", "no": "nor", "oc": "oci", "pl": "pol", "pt": "por", "ro": "ron", "ru": "rus",
    "sc": "srd", "se": "sme", "sh": "hbs", "sk": "slk", "sl": "slv", "sq": "sqi", "sr": "srp",
    "sv": "swe", "tr": "tur", "tt": "tat", "uk": "ukr", "ur": "urd",
}  # fmt: skip
_APERTIUM_TO_ISO_639_1 = {three: two for two, three in ISO_639_1_TO_APERTIUM.items()}

# A translation mode: "eng-spa", "en-gl", "spa-eng_US", "cat-spa_valencia" (variants after "_").
_MODE = re.compile(r"^([a-z]{2,3})(_\w+)?-([a-z]{2,3})(_\w+)?$")
# Apertium marks unknown words "*", generation errors "#" and untranslated lemmas "@" at word start.
_MARKER = re.compile(r"(?<!\w)[*#@](?=\w)")
_SPACES = re.compile(r"[ \t]{2,}")


def language_key(code: str) -> str:
    """A language's key here: ISO-639-1 where one exists (``"eng"``, ``"en-US"`` -> ``"en"``)."""
    base = re.split(r"[-_]", code.strip().lower(), maxsplit=1)[0]
    return _APERTIUM_TO_ISO_639_1.get(base, base)


def clean_output(text: str) -> str:
    """Apertium's output without its ``*``/``#``/``@`` markers and doubled spaces."""
    return _SPACES.sub(" ", _MARKER.sub("", text)).strip()


@dataclass(frozen=True)
class ApertiumOptions:
    """Options of :class:`ApertiumTranslator`.

    Attributes:
        executable: The ``apertium`` script (name on ``PATH`` or a path).
        data_dir: Linguistic data directory passed as ``-d``; ``None`` uses the installed pairs.
        timeout_s: Wall-clock limit of one translation.
        variants: Preferred variant modes, e.g. ``{("es", "en"): "spa-eng_US"}``; by default the plain
            mode of a pair is used, or its first variant if it has no plain mode.
    """

    executable: str = "apertium"
    data_dir: Path | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    variants: Mapping[tuple[str, str], str] | None = None


class ApertiumTranslator:
    """A :class:`~openrealtime.contracts.Translator` over the installed Apertium pairs.

    Each call spawns the pair's pipeline (about 0.15-0.25 s, mostly process start-up), so calls are
    independent and thread safe.

    Args:
        options: Executable, data directory, timeout and variant preferences.
    """

    def __init__(self, options: ApertiumOptions | None = None) -> None:
        self.options = options or ApertiumOptions()
        self._executable = shutil.which(self.options.executable)
        self.modes: dict[tuple[str, str], str] = self._discover() if self._executable else {}
        for pair, mode in (self.options.variants or {}).items():
            self.modes[(language_key(pair[0]), language_key(pair[1]))] = mode

    def _base_command(self) -> list[str]:
        command = [self._executable or self.options.executable]
        if self.options.data_dir is not None:
            command += ["-d", str(self.options.data_dir)]
        return command

    def _discover(self) -> dict[tuple[str, str], str]:
        try:
            listing = subprocess.run(
                [*self._base_command(), "-l"],
                capture_output=True,
                text=True,
                timeout=_LIST_TIMEOUT_S,
                check=False,
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return {}
        modes: dict[tuple[str, str], str] = {}
        for name in sorted(listing.split()):
            match = _MODE.match(name)
            if match is None:
                continue
            pair = (language_key(match.group(1)), language_key(match.group(3)))
            plain = match.group(2) is None and match.group(4) is None
            if plain or pair not in modes:
                modes[pair] = name
        return modes

    def supports(self, source: str, target: str) -> bool:
        """Whether an installed Apertium mode translates ``source`` into ``target`` (ISO-639-1)."""
        return (language_key(source), language_key(target)) in self.modes

    def translate(self, text: str, *, source: str, target: str) -> str:
        """Translate ``text``; unknown words pass through unmarked.

        Raises:
            EngineError: If the pair is not installed, or Apertium fails or runs past the timeout.
        """
        mode = self.modes.get((language_key(source), language_key(target)))
        if mode is None:
            raise EngineError(f"Apertium has no installed pair {source}->{target}", code="unsupported_language_pair")
        if not text.strip():
            return ""
        return clean_output(self._run(mode, text))

    def _run(self, mode: str, text: str) -> str:
        """Run one pipeline; the one place process errors are translated.

        ``apertium`` is a shell script that starts a pipeline of a dozen processes, so it runs in its
        own process group and a timeout kills the whole group: killing only the script would leave
        the pipeline holding the output pipe open, and the wait would last as long as it does.
        """
        try:
            process = subprocess.Popen(
                [*self._base_command(), "-u", "-f", "txt", mode],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                encoding="utf-8",
                start_new_session=True,
            )
        except OSError as exc:
            raise EngineError(f"cannot run Apertium: {exc}", code="translation_failed") from exc
        try:
            stdout, stderr = process.communicate(text, timeout=self.options.timeout_s)
        except subprocess.TimeoutExpired as exc:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise EngineError(
                f"Apertium {mode} took longer than {self.options.timeout_s} s", code="translation_timeout"
            ) from exc
        if process.returncode != 0:
            raise EngineError(
                f"Apertium {mode} exited with {process.returncode}: {stderr.strip()[:_STDERR_MAX_CHARS]}",
                code="translation_failed",
            )
        return stdout
