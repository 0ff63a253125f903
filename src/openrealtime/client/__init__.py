"""The async client library: connect, stream audio, follow live captions in turn order."""

from openrealtime.client.captions import CaptionBoard
from openrealtime.client.connection import RealtimeConnection
from openrealtime.client.failover import Failover
from openrealtime.client.transcribe import TranscriptionResult, transcribe_audio

__all__ = ["CaptionBoard", "Failover", "RealtimeConnection", "TranscriptionResult", "transcribe_audio"]
