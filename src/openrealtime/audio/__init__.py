"""Audio in numpy only: PCM16 and G.711 codecs, a stateful resampler, bounded sample buffers.

Internally audio is ``float32`` mono in [-1, 1]; every signature names its rate (``_hz``).
"""

from openrealtime.audio.buffer import SampleBuffer
from openrealtime.audio.codec import (
    AudioFormat,
    decode_audio,
    encode_audio,
    float_to_pcm16,
    pcm16_to_float,
)
from openrealtime.audio.resample import StreamResampler
from openrealtime.audio.types import Samples

__all__ = [
    "AudioFormat",
    "SampleBuffer",
    "Samples",
    "StreamResampler",
    "decode_audio",
    "encode_audio",
    "float_to_pcm16",
    "pcm16_to_float",
]
