"""merge_update: a session.update's fields folded into the effective config, as OpenAI applies them."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from openrealtime.protocol.config import (
    DEFAULT_PREFIX_PADDING_MS,
    DEFAULT_SILENCE_DURATION_MS,
    DEFAULT_VAD_THRESHOLD,
    TranscriptionSessionConfig,
    merge_update,
)


def effective() -> dict[str, Any]:
    """The effective config of a fresh transcription session, as session.created carries it."""
    return TranscriptionSessionConfig().model_dump(mode="json")


def client_update(session: dict[str, Any]) -> dict[str, Any]:
    """What a client set, the way the session sees it: parsed strictly, then only the fields set."""
    return TranscriptionSessionConfig.model_validate(session).model_dump(mode="json", exclude_unset=True)


def test_the_defaults_merged_into() -> None:
    assert effective() == {
        "type": "transcription",
        "object": None,
        "id": None,
        "expires_at": None,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "noise_reduction": None,
                "transcription": None,
                "turn_detection": {
                    "type": "server_vad",
                    "threshold": DEFAULT_VAD_THRESHOLD,
                    "prefix_padding_ms": DEFAULT_PREFIX_PADDING_MS,
                    "silence_duration_ms": DEFAULT_SILENCE_DURATION_MS,
                    # no create_response, interrupt_response or idle_timeout_ms: a transcription
                    # session has no responses, and OpenAI's echo of its turn detection has none
                },
            }
        },
        "include": None,
    }


def test_a_nested_partial_update_changes_only_what_it_names() -> None:
    current = effective()
    merged = merge_update(current, {"audio": {"input": {"turn_detection": {"silence_duration_ms": 800}}}})
    expected = effective()
    expected["audio"]["input"]["turn_detection"]["silence_duration_ms"] = 800
    assert merged == expected


def test_a_partial_update_with_the_same_type_merges() -> None:
    update = client_update(
        {
            "type": "transcription",
            "audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": 0.7}}},
        }
    )
    assert update == {
        "type": "transcription",
        "audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": 0.7}}},
    }
    merged = merge_update(effective(), update)
    detection = merged["audio"]["input"]["turn_detection"]
    assert detection["threshold"] == 0.7
    assert detection["silence_duration_ms"] == DEFAULT_SILENCE_DURATION_MS  # kept
    assert detection["prefix_padding_ms"] == DEFAULT_PREFIX_PADDING_MS  # kept
    TranscriptionSessionConfig.model_validate(merged)


def test_successive_partial_updates_accumulate() -> None:
    merged = effective()
    merged = merge_update(merged, {"audio": {"input": {"transcription": {"model": "gpt-4o-transcribe"}}}})
    merged = merge_update(merged, {"audio": {"input": {"transcription": {"language": "en"}}}})
    merged = merge_update(merged, {"audio": {"input": {"turn_detection": {"prefix_padding_ms": 100}}}})
    assert merged["audio"]["input"]["transcription"] == {"model": "gpt-4o-transcribe", "language": "en"}
    assert merged["audio"]["input"]["turn_detection"]["prefix_padding_ms"] == 100
    config = TranscriptionSessionConfig.model_validate(merged)
    assert config.audio.input.transcription is not None
    assert (config.audio.input.transcription.model, config.audio.input.transcription.language) == (
        "gpt-4o-transcribe",
        "en",
    )


def test_a_type_change_replaces_the_object() -> None:
    update = client_update({"type": "transcription", "audio": {"input": {"turn_detection": {"type": "semantic_vad"}}}})
    merged = merge_update(effective(), update)
    # Keeping server_vad's silence_duration_ms here would make the merged config invalid.
    assert merged["audio"]["input"]["turn_detection"] == {"type": "semantic_vad"}
    config = TranscriptionSessionConfig.model_validate(merged)
    assert config.model_dump(mode="json")["audio"]["input"]["turn_detection"] == {
        "type": "semantic_vad",
        "eagerness": "auto",
    }


def test_a_format_change_drops_the_old_formats_fields() -> None:
    merged = merge_update(effective(), {"audio": {"input": {"format": {"type": "audio/pcmu"}}}})
    assert merged["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    TranscriptionSessionConfig.model_validate(merged)


def test_null_clears() -> None:
    merged = merge_update(effective(), {"audio": {"input": {"turn_detection": None}}})
    assert merged["audio"]["input"]["turn_detection"] is None
    assert merged["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}  # siblings kept
    assert TranscriptionSessionConfig.model_validate(merged).audio.input.turn_detection is None


def test_an_object_after_null_starts_from_its_defaults() -> None:
    cleared = merge_update(effective(), {"audio": {"input": {"turn_detection": None}}})
    merged = merge_update(cleared, {"audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": 0.3}}}})
    config = TranscriptionSessionConfig.model_validate(merged)
    assert config.audio.input.turn_detection is not None
    assert config.model_dump(mode="json")["audio"]["input"]["turn_detection"]["threshold"] == 0.3
    assert config.model_dump(mode="json")["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 200


def test_null_clears_a_leaf_inside_an_object() -> None:
    current = merge_update(effective(), {"audio": {"input": {"transcription": {"model": "m", "language": "en"}}}})
    merged = merge_update(current, {"audio": {"input": {"transcription": {"language": None}}}})
    assert merged["audio"]["input"]["transcription"] == {"model": "m", "language": None}


def test_lists_replace_instead_of_extending() -> None:
    current = merge_update(effective(), {"audio": {"input": {"transcription": {"keywords": ["a", "b"]}}}})
    merged = merge_update(current, {"audio": {"input": {"transcription": {"keywords": ["c"]}}}})
    assert merged["audio"]["input"]["transcription"]["keywords"] == ["c"]


def test_a_new_key_is_added() -> None:
    assert merge_update({"a": 1}, {"b": {"c": 2}}) == {"a": 1, "b": {"c": 2}}


def test_an_empty_update_changes_nothing() -> None:
    assert merge_update(effective(), {}) == effective()
    assert merge_update(effective(), {"audio": {"input": {}}}) == effective()


def test_a_scalar_replaces_an_object_and_an_object_a_scalar() -> None:
    assert merge_update({"x": {"y": 1}}, {"x": 5}) == {"x": 5}
    assert merge_update({"x": 5}, {"x": {"y": 1}}) == {"x": {"y": 1}}


def test_an_update_with_a_type_merges_into_an_old_object_without_one_only_if_it_matches() -> None:
    assert merge_update({"x": {"a": 1}}, {"x": {"type": "t"}}) == {"x": {"type": "t"}}
    assert merge_update({"x": {"type": "t", "a": 1}}, {"x": {"b": 2}}) == {"x": {"type": "t", "a": 1, "b": 2}}


def test_inputs_are_not_mutated() -> None:
    current = effective()
    update = {"audio": {"input": {"turn_detection": {"threshold": 0.9}, "format": {"type": "audio/pcma"}}}}
    current_before, update_before = copy.deepcopy(current), copy.deepcopy(update)
    merged = merge_update(current, update)
    assert current == current_before
    assert update == update_before
    merged["audio"]["input"]["turn_detection"]["threshold"] = 0.1
    assert current["audio"]["input"]["turn_detection"]["threshold"] == DEFAULT_VAD_THRESHOLD


def test_a_merge_can_still_be_invalid_and_validation_says_so() -> None:
    """noise_reduction needs a type; a partial update onto null cannot supply one."""
    merged = merge_update(effective(), {"audio": {"input": {"noise_reduction": {"strength": 0.5}}}})
    with pytest.raises(ValidationError):
        TranscriptionSessionConfig.model_validate(merged)
