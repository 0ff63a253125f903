"""Server events of our own, not in OpenAI's API (docs/compatibility.md, "Our extensions").

Each is sent only to a session that asked for the extension it belongs to, so a strict client never
sees one. They live apart from :mod:`~openrealtime.protocol.server_events`, whose every event is
OpenAI's (the conformance tests check it); the client's lenient parser knows both.
"""

from __future__ import annotations

from typing import Literal

from openrealtime.protocol.server_events import ServerEvent


class SpeechJudged(ServerEvent):
    """The ``adaptive`` barge-in's verdict on speech over the assistant (issue 13, session/bargein.py).

    Sent only to a session that set ``audio.input.turn_detection.barge_in`` itself, after the events
    the verdict caused (an interruption's ``response.done`` comes first). A client that paused its
    player at ``input_audio_buffer.speech_started`` resumes it when ``interruption`` is false (the
    answer goes on from the same sample) and clears it, truncating what was heard, when it is true.
    """

    type: Literal["input_audio_buffer.speech_judged"] = "input_audio_buffer.speech_judged"
    item_id: str
    interruption: bool
