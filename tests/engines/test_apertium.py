"""Apertium: mode discovery and language codes, marker cleaning, failures, and real en<->es."""

from __future__ import annotations

import shutil
import stat
import time
from pathlib import Path

import pytest

from openrealtime.engines.apertium import ApertiumOptions, ApertiumTranslator, clean_output, language_key
from openrealtime.exceptions import EngineError
from tests.conftest import TIMEOUT_S

needs_apertium = pytest.mark.skipif(
    shutil.which("apertium") is None or not ApertiumTranslator().supports("en", "es"),
    reason="apertium and apertium-eng-spa are not installed",
)


def fake_apertium(tmp_path: Path, body: str, modes: str = "eng-spa") -> str:
    """An ``apertium`` stand-in: ``-l`` lists ``modes``, anything else runs ``body``."""
    script = tmp_path / "apertium"
    script.write_text(f'#!/bin/sh\nif [ "$1" = "-l" ]; then printf "{modes}\\n"; exit 0; fi\n{body}\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_language_keys() -> None:
    assert language_key("en") == "en"
    assert language_key("eng") == "en"
    assert language_key("en-US") == "en"
    assert language_key("ES_es") == "es"
    assert language_key("spa") == "es"
    assert language_key("ast") == "ast"  # no ISO-639-1 code: stays as it is


def test_clean_output_removes_markers() -> None:
    assert clean_output("Me gusta el *hurdygurdy y #foo @bar.\n") == "Me gusta el hurdygurdy y foo bar."
    assert clean_output("cómo puede  te ayudas") == "cómo puede te ayudas"
    assert clean_output("correo a@b.com") == "correo a@b.com"  # not at a word start: kept


def test_modes_are_discovered_with_old_and_variant_names(tmp_path: Path) -> None:
    modes = "eng-spa\\nspa-eng_US\\nen-gl\\nspa-cat_valencia\\nspa-cat\\neng-spa-tagger\\nnonsense"
    translator = ApertiumTranslator(ApertiumOptions(executable=fake_apertium(tmp_path, "cat", modes)))
    assert translator.modes == {
        ("en", "es"): "eng-spa",
        ("es", "en"): "spa-eng_US",  # only a variant exists: it is used
        ("en", "gl"): "en-gl",
        ("es", "ca"): "spa-cat",  # the plain mode wins over its variant
    }
    assert translator.supports("en-GB", "spa")
    assert not translator.supports("en", "fr")


def test_variants_can_be_chosen(tmp_path: Path) -> None:
    options = ApertiumOptions(
        executable=fake_apertium(tmp_path, "cat", "spa-cat\\nspa-cat_valencia"),
        variants={("es", "ca"): "spa-cat_valencia"},
    )
    assert ApertiumTranslator(options).modes[("es", "ca")] == "spa-cat_valencia"


def test_without_apertium_nothing_is_supported() -> None:
    translator = ApertiumTranslator(ApertiumOptions(executable="/nonexistent/apertium"))
    assert not translator.supports("en", "es")
    with pytest.raises(EngineError) as info:
        translator.translate("Hello", source="en", target="es")
    assert info.value.code == "unsupported_language_pair"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_a_hanging_pipeline_times_out_and_is_killed(tmp_path: Path) -> None:
    # Like the real script, the fake starts children; none may outlive the timeout.
    pid_file = tmp_path / "pid"
    options = ApertiumOptions(
        executable=fake_apertium(tmp_path, f"sleep 30 & echo $! > {pid_file}; cat; wait"), timeout_s=0.2
    )
    started = time.monotonic()
    with pytest.raises(EngineError) as info:
        ApertiumTranslator(options).translate("Hello", source="en", target="es")
    assert info.value.code == "translation_timeout"
    assert time.monotonic() - started < TIMEOUT_S / 2
    # A killed process closes its pipes just before it turns zombie: allow it that instant.
    child, deadline = int(pid_file.read_text()), time.monotonic() + TIMEOUT_S / 4
    while running(child) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not running(child)


def running(pid: int) -> bool:
    """Linux: whether ``pid`` exists and is not a zombie waiting for init to reap it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_failing_pipeline_is_an_engine_error(tmp_path: Path) -> None:
    options = ApertiumOptions(executable=fake_apertium(tmp_path, "echo broken >&2; exit 3"))
    with pytest.raises(EngineError, match="exited with 3: broken") as info:
        ApertiumTranslator(options).translate("Hello", source="en", target="es")
    assert info.value.code == "translation_failed"


def test_the_text_goes_through_stdin_and_is_cleaned(tmp_path: Path) -> None:
    options = ApertiumOptions(executable=fake_apertium(tmp_path, "sed 's/Hello/*Hola/'"))
    translator = ApertiumTranslator(options)
    assert translator.translate("Hello world", source="en", target="es") == "Hola world"
    assert translator.translate("   ", source="en", target="es") == ""


@pytest.mark.real
@needs_apertium
def test_english_to_spanish_and_back() -> None:
    translator = ApertiumTranslator()
    assert translator.supports("en", "es")
    assert translator.supports("es", "en")
    assert "Buenos" in translator.translate("Good morning", source="en", target="es")
    spanish = translator.translate("Good morning, I would like a table for two people.", source="en", target="es")
    assert "mesa" in spanish
    assert "personas" in spanish
    english = translator.translate("Buenos días, ¿cómo estás?", source="es", target="en")
    assert "Good morning" in english


@pytest.mark.real
@needs_apertium
def test_unknown_words_pass_through_unmarked() -> None:
    out = ApertiumTranslator().translate("I like the hurdygurdy.", source="en", target="es")
    assert "hurdygurdy" in out
    assert "*" not in out
