"""WebRTC calls (``POST /v1/realtime/calls``, issue 11): a session driven over a peer connection.

The ``oai-events`` data channel carries the events (:mod:`~openrealtime.webrtc.channel`, the
connection's transport), the audio goes both ways as 48 kHz Opus (:mod:`~openrealtime.webrtc.media`,
the connection's media port, with the server's playback buffer in
:mod:`~openrealtime.webrtc.playback`), :mod:`~openrealtime.webrtc.peer` makes the answer, and
:mod:`~openrealtime.webrtc.calls` holds the live calls from answer to hang-up.

aiortc is an optional extra (``pip install openrealtime[webrtc]``): nothing here is imported until
the first call, and :func:`available` tells the server whether a call can be answered at all.
"""

from __future__ import annotations

import importlib.util


def available() -> bool:
    """Whether aiortc (and so WebRTC calls) can be imported."""
    return importlib.util.find_spec("aiortc") is not None
