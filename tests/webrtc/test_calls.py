"""WebRTC calls over loopback with an aiortc client peer and fake engines: the offer shapes, events on
the data channel, audio both ways, server playback and barge-in, hang-up, the watchdog, the errors."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from typing import Any

import httpx
import numpy as np
import pytest
from aiortc import RTCSessionDescription
from openai import AsyncOpenAI

from openrealtime.engines.fake import EnergyVad, FakeChatModel, FakeTranscriber, ToneSynthesizer
from openrealtime.runtime.engines import EngineSet
from openrealtime.server.embedded import running_server
from openrealtime.server.settings import Settings
from openrealtime.session.realtime import RealtimeSession
from tests.conftest import TIMEOUT_S, quiet, tone
from tests.webrtc.peer import RATE_HZ, CallPeer

KEY = "sk-test-key"
ANSWER = "Hello there. How can I help you today?"


@pytest.fixture
def engines() -> Any:
    voice = ToneSynthesizer()
    engines = EngineSet(
        vad=EnergyVad(),
        transcriber=FakeTranscriber(),
        transcriber_name="fake",
        chat=FakeChatModel(ANSWER),
        synthesizers={"en": voice, "*": voice},
    )
    yield engines
    engines.close()


@contextlib.asynccontextmanager
async def server(engines: EngineSet, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A server for calls with fake engines. Their voice is a 220 Hz tone and the callers here speak
    300 Hz tones: the echo canceller (pywebrtc-audio) takes one for the echo of the other and
    suppresses it, as it should, so it is off unless a test asks for it (real speech: test_calls_real)."""
    settings = {"echo_cancellation": False, **settings}
    async with (
        running_server(Settings(port=0, api_key=KEY, **settings), engines=engines) as url,
        httpx.AsyncClient(base_url=url.replace("ws://", "http://"), timeout=TIMEOUT_S) as http,
    ):
        yield http


@contextlib.asynccontextmanager
async def peer() -> AsyncIterator[CallPeer]:
    client = CallPeer()
    try:
        yield client
    finally:
        await client.close()


def dominant_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / RATE_HZ)[int(np.argmax(spectrum))])


async def test_a_call_holds_a_spoken_turn_and_plays_the_answer(engines: EngineSet) -> None:
    async with server(engines) as http, peer() as client:
        reply = await client.call(http, key=KEY)
        assert reply.status_code == 201
        assert reply.headers["content-type"].startswith("application/sdp")
        assert reply.headers["location"].startswith("/v1/realtime/calls/rtc_")
        created = await client.next("session.created", timeout_s=TIMEOUT_S)
        assert created["session"]["type"] == "realtime"
        client.mic.say(np.concatenate([tone(1000, rate_hz=RATE_HZ), quiet(1000, rate_hz=RATE_HZ)]))
        done = await client.next("response.done", timeout_s=TIMEOUT_S)
        assert done["response"]["status"] == "completed"
        await client.next("output_audio_buffer.stopped", timeout_s=TIMEOUT_S)
        kinds = [e["type"] for e in client.seen]
        assert "response.output_audio.delta" not in kinds
        assert kinds.index("output_audio_buffer.started") < kinds.index("output_audio_buffer.stopped")
        assert kinds.index("input_audio_buffer.speech_started") < kinds.index("input_audio_buffer.committed")
        heard = client.audio()
        assert np.count_nonzero(np.abs(heard) > 0.05) > RATE_HZ  # over a second of the answer arrived
        start = int(np.argmax(np.abs(heard) > 0.05))
        assert abs(dominant_hz(heard[start : start + RATE_HZ]) - 220) < 5  # the voice's 220 Hz tone


async def mint(http: httpx.AsyncClient, session: dict[str, Any] | None = None) -> str:
    body: dict[str, Any] = {"expires_after": {"anchor": "created_at", "seconds": 60}}
    if session is not None:
        body["session"] = session
    reply = await http.post("/v1/realtime/client_secrets", json=body, headers={"Authorization": f"Bearer {KEY}"})
    assert reply.status_code == 200, reply.text
    return str(reply.json()["value"])


@pytest.mark.parametrize("shape", ["json", "multipart"])
async def test_the_sdk_shapes_carry_a_session_config(engines: EngineSet, shape: str) -> None:
    session = {"type": "realtime", "model": "gpt-realtime", "instructions": "Speak like a pirate."}
    async with server(engines) as http, peer() as client:
        reply = await client.call(http, key=KEY, shape=shape, session=session)
        assert reply.status_code == 201, reply.text
        created = await client.next("session.created", timeout_s=TIMEOUT_S)
        assert created["session"]["instructions"] == "Speak like a pirate."


async def test_a_client_secret_opens_a_call_in_its_config_and_cannot_hang_up(engines: EngineSet) -> None:
    async with server(engines) as http, peer() as client:
        secret = await mint(http, {"type": "realtime", "instructions": "From the secret."})
        reply = await client.call(http, key=secret)
        assert reply.status_code == 201, reply.text
        created = await client.next("session.created", timeout_s=TIMEOUT_S)
        assert created["session"]["instructions"] == "From the secret."
        hangup = await http.post(reply.headers["location"] + "/hangup", headers={"Authorization": f"Bearer {secret}"})
        assert hangup.status_code == 401
        assert hangup.json()["error"]["code"] == "invalid_api_key"


async def test_a_transcription_secret_opens_a_transcription_call(engines: EngineSet) -> None:
    async with server(engines) as http, peer() as client:
        transcription = {"model": "gpt-4o-transcribe"}
        secret = await mint(http, {"type": "transcription", "audio": {"input": {"transcription": transcription}}})
        reply = await client.call(http, key=secret)
        assert reply.status_code == 201, reply.text
        created = await client.next("session.created", timeout_s=TIMEOUT_S)
        assert created["session"]["type"] == "transcription"
        client.mic.say(np.concatenate([tone(800, rate_hz=RATE_HZ), quiet(1000, rate_hz=RATE_HZ)]))
        completed = await client.next("conversation.item.input_audio_transcription.completed", timeout_s=TIMEOUT_S)
        assert completed["transcript"]


async def test_hang_up_ends_the_call_and_frees_its_place_at_once(engines: EngineSet) -> None:
    async with server(engines, max_realtime_sessions=1) as http:
        async with peer() as first:
            reply = await first.call(http, key=KEY)
            assert reply.status_code == 201
            await first.next("session.created", timeout_s=TIMEOUT_S)
            async with peer() as second:
                busy = await second.call(http, key=KEY)
                assert busy.status_code == 503
                assert busy.json()["error"]["code"] == "session_limit_reached"
            hangup = await http.post(reply.headers["location"] + "/hangup", headers={"Authorization": f"Bearer {KEY}"})
            assert hangup.status_code == 200
            assert hangup.content == b""
            again = await http.post(reply.headers["location"] + "/hangup", headers={"Authorization": f"Bearer {KEY}"})
            assert again.status_code == 404
            assert again.json()["error"]["code"] == "call_not_found"
        async with peer() as third:
            assert (await third.call(http, key=KEY)).status_code == 201  # the place was free already


async def test_a_call_whose_answer_fails_says_so_and_frees_its_place(
    engines: EngineSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    from openrealtime.webrtc import calls

    answer = calls.answer

    async def broken(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("ICE gathering failed")

    async with server(engines, max_realtime_sessions=1) as http:
        monkeypatch.setattr(calls, "answer", broken)
        async with peer() as first:
            failed = await first.call(http, key=KEY)
        assert failed.status_code == 500
        assert failed.json()["error"]["code"] == "call_failed"
        monkeypatch.setattr(calls, "answer", answer)
        async with peer() as second:
            assert (await second.call(http, key=KEY)).status_code == 201, "its place was given back"


async def test_a_call_that_never_connects_is_ended_by_the_watchdog(engines: EngineSet) -> None:
    async with server(engines, max_realtime_sessions=1, call_connect_timeout_s=1) as http, peer() as client:
        offer = await client.offer()
        headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/sdp"}
        reply = await http.post("/v1/realtime/calls", content=offer, headers=headers)
        assert reply.status_code == 201  # ...and the answer is never used
        auth = {"Authorization": f"Bearer {KEY}"}
        async with asyncio.timeout(TIMEOUT_S):
            # The server's sessions are seen over HTTP only: look again until the call's place is free.
            while (await http.get("/healthz", headers=auth)).json()["active_sessions"]:  # noqa: ASYNC110
                await asyncio.sleep(0.1)


async def test_errors_are_openai_json(engines: EngineSet) -> None:
    async with server(engines) as http:
        auth = {"Authorization": f"Bearer {KEY}"}
        bad = await http.post(
            "/v1/realtime/calls", content="hello", headers={**auth, "Content-Type": "application/sdp"}
        )
        assert bad.status_code == 400
        assert bad.json()["error"]["param"] == "sdp"
        assert bad.json()["error"]["message"]
        broken = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
        unread = await http.post(
            "/v1/realtime/calls", content=broken, headers={**auth, "Content-Type": "application/sdp"}
        )
        assert unread.status_code == 400
        assert unread.json()["error"]["code"] == "invalid_offer"
        wrong_type = await http.post("/v1/realtime/calls", content="v=0", headers={**auth, "Content-Type": "text/html"})
        assert wrong_type.status_code == 415
        nokey = await http.post("/v1/realtime/calls", content="v=0", headers={"Content-Type": "application/sdp"})
        assert nokey.status_code == 401
        no_sdp = await http.post("/v1/realtime/calls", json={"session": {"type": "realtime"}}, headers=auth)
        assert no_sdp.status_code == 400
        assert no_sdp.json()["error"]["code"] == "missing_required_parameter"
        async with peer() as client:
            bad_config = await client.call(http, key=KEY, shape="json", session={"type": "realtime", "voice": 3})
        assert bad_config.status_code == 400
        assert bad_config.json()["error"]["param"] == "session.voice"
        unknown = await http.post("/v1/realtime/calls/rtc_nope/hangup", headers=auth)
        assert unknown.status_code == 404


async def test_without_aiortc_a_call_is_a_501(engines: EngineSet, monkeypatch: pytest.MonkeyPatch) -> None:
    from openrealtime import webrtc

    monkeypatch.setattr(webrtc, "available", lambda: False)
    async with server(engines) as http:
        reply = await http.post(
            "/v1/realtime/calls",
            content="v=0",
            headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/sdp"},
        )
    assert reply.status_code == 501
    assert reply.json()["error"]["code"] == "webrtc_unavailable"


async def test_barge_in_truncates_the_answer_to_what_was_played(engines: EngineSet) -> None:
    async with server(engines) as http, peer() as client:
        assert (await client.call(http, key=KEY)).status_code == 201
        await client.next("session.created", timeout_s=TIMEOUT_S)
        client.mic.say(np.concatenate([tone(1000, rate_hz=RATE_HZ), quiet(900, rate_hz=RATE_HZ)]))
        started = await client.next("output_audio_buffer.started", timeout_s=TIMEOUT_S)
        await client.mic.drained.wait()
        await asyncio.sleep(0.6)  # let some of the 2.3 s answer play
        client.mic.say(tone(800, rate_hz=RATE_HZ))
        cleared = await client.next("output_audio_buffer.cleared", timeout_s=TIMEOUT_S)
        assert cleared["response_id"] == started["response_id"]
        truncated = await client.next("conversation.item.truncated", timeout_s=TIMEOUT_S)
        kinds = [e["type"] for e in client.seen]
        assert kinds.index("input_audio_buffer.speech_started") < kinds.index("output_audio_buffer.cleared")
        assert "output_audio_buffer.stopped" not in kinds
        await asyncio.sleep(0.3)  # what was in flight arrives
        heard = client.audio()
        loud = np.flatnonzero(np.abs(heard) > 0.1)
        heard_ms = (loud[-1] - loud[0]) * 1000 / RATE_HZ
        assert 300 < truncated["audio_end_ms"] < 2000
        assert abs(truncated["audio_end_ms"] - heard_ms) < 60  # what the caller got is what was counted


async def test_the_official_sdk_creates_and_hangs_up_a_call(engines: EngineSet) -> None:
    async with server(engines) as http, peer() as client:
        sdk = AsyncOpenAI(api_key=KEY, base_url=str(http.base_url).rstrip("/") + "/v1")
        try:
            offer = await client.offer()
            session: Any = {"type": "realtime", "model": "gpt-realtime", "instructions": "Via the SDK."}
            raw = await sdk.realtime.calls.with_raw_response.create(sdp=offer, session=session)
            call_id = raw.headers["location"].split("/")[-1]
            await client.pc.setRemoteDescription(RTCSessionDescription(sdp=raw.text, type="answer"))
            created = await client.next("session.created", timeout_s=TIMEOUT_S)
            assert created["session"]["instructions"] == "Via the SDK."
            await sdk.realtime.calls.hangup(call_id)
        finally:
            await sdk.close()


async def test_a_hung_up_call_leaves_nothing_behind(engines: EngineSet) -> None:
    """Its session is freed by reference counting (issue 10's rule), and no aiortc task is left."""
    gc.collect()
    gc.disable()
    try:
        async with server(engines) as http:
            async with peer() as client:
                reply = await client.call(http, key=KEY)
                session_id = (await client.next("session.created", timeout_s=TIMEOUT_S))["session"]["id"]
                client.mic.say(np.concatenate([tone(1000, rate_hz=RATE_HZ), quiet(1000, rate_hz=RATE_HZ)]))
                await client.next("output_audio_buffer.started", timeout_s=TIMEOUT_S)
                hangup = await http.post(
                    reply.headers["location"] + "/hangup", headers={"Authorization": f"Bearer {KEY}"}
                )
                assert hangup.status_code == 200
            alive = [o for o in gc.get_objects() if isinstance(o, RealtimeSession) and o.info.session_id == session_id]
            assert alive == []
            async with asyncio.timeout(TIMEOUT_S):
                while left := [t for t in asyncio.all_tasks() if "aio" in repr(t.get_coro()) and "rtc" in repr(t)]:
                    await asyncio.wait(left, timeout=0.1)
    finally:
        gc.enable()


async def test_a_page_of_an_allowed_origin_reads_the_call_id(engines: EngineSet) -> None:
    origin = "http://app.example"
    async with server(engines, allowed_origins=origin) as http, peer() as client:
        preflight = await http.options(
            "/v1/realtime/calls",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == origin
        offer = await client.offer()
        headers = {"Origin": origin, "Authorization": f"Bearer {KEY}", "Content-Type": "application/sdp"}
        reply = await http.post("/v1/realtime/calls", content=offer, headers=headers)
        assert reply.status_code == 201
        assert "location" in reply.headers["access-control-expose-headers"].lower()
        foreign = await http.post(
            "/v1/realtime/calls", content=offer, headers={**headers, "Origin": "http://evil.example"}
        )
        assert foreign.status_code == 403


async def test_a_server_that_shuts_down_ends_its_calls(engines: EngineSet) -> None:
    async with peer() as client:
        closed = asyncio.Event()
        client.channel.on("close", closed.set)
        async with server(engines) as http:
            assert (await client.call(http, key=KEY)).status_code == 201
            await client.next("session.created", timeout_s=TIMEOUT_S)
        async with asyncio.timeout(TIMEOUT_S):
            await closed.wait()  # the lifespan ended every call: the caller's channel closed


async def test_a_translation_call_plays_the_translated_speech() -> None:
    from openrealtime.engines.fake import UppercaseTranslator

    engines = EngineSet(
        vad=EnergyVad(),
        transcriber=FakeTranscriber(("Good", "morning."), words_per_second=4.0),
        transcriber_name="fake",
        synthesizers={"*": ToneSynthesizer()},
        translators=[UppercaseTranslator()],
    )
    session = {"type": "translation", "audio": {"output": {"language": "es"}}}
    try:
        async with server(engines) as http, peer() as client:
            reply = await client.call(
                http, key=KEY, shape="json", session=session, path="/v1/realtime/translations/calls"
            )
            assert reply.status_code == 201, reply.text
            created = await client.next("session.created", timeout_s=TIMEOUT_S)
            assert created["session"]["type"] == "translation"
            assert created["session"]["audio"]["output"]["language"] == "es"
            client.mic.say(np.concatenate([tone(1400, rate_hz=RATE_HZ), quiet(1000, rate_hz=RATE_HZ)]))
            words = ""
            async with asyncio.timeout(TIMEOUT_S):
                while "MORNING" not in words:
                    words += (await client.next("session.output_transcript.delta", timeout_s=TIMEOUT_S))["delta"]
            async with asyncio.timeout(TIMEOUT_S):
                while np.count_nonzero(np.abs(client.audio()) > 0.05) < RATE_HZ // 2:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)  # the speech plays at its own pace on the track
            assert "session.output_audio.delta" not in [e["type"] for e in client.seen]
        assert words.startswith("[es] GOOD")
    finally:
        engines.close()


async def test_an_audio_only_call_is_answered_without_a_data_channel(engines: EngineSet) -> None:
    from aiortc import RTCConfiguration, RTCPeerConnection

    from tests.webrtc.peer import Microphone

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    mic = Microphone()
    pc.addTrack(mic)
    received = asyncio.Event()

    async def record(track: Any) -> None:
        while True:
            frame = await track.recv()
            if np.abs(frame.to_ndarray()).max() > 1000:
                received.set()
                return

    readers: list[asyncio.Task[None]] = []
    pc.on("track", lambda track: readers.append(asyncio.get_running_loop().create_task(record(track))))
    try:
        async with server(engines) as http:
            await pc.setLocalDescription(await pc.createOffer())
            headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/sdp"}
            reply = await http.post("/v1/realtime/calls", content=pc.localDescription.sdp, headers=headers)
            assert reply.status_code == 201
            await pc.setRemoteDescription(RTCSessionDescription(sdp=reply.text, type="answer"))
            mic.say(np.concatenate([tone(1000, rate_hz=RATE_HZ), quiet(1000, rate_hz=RATE_HZ)]))
            async with asyncio.timeout(TIMEOUT_S):
                await received.wait()  # the answer was spoken, though no one gets its events
            hangup = await http.post(reply.headers["location"] + "/hangup", headers={"Authorization": f"Bearer {KEY}"})
            assert hangup.status_code == 200
    finally:
        await pc.close()
        for reader in readers:
            reader.cancel()
        if readers:
            await asyncio.wait(readers)


async def test_a_session_that_expires_says_why_then_ends_the_call(engines: EngineSet) -> None:
    async with server(engines, session_lifetime_s=1) as http, peer() as client:
        closed = asyncio.Event()
        client.channel.on("close", closed.set)
        assert (await client.call(http, key=KEY)).status_code == 201
        error = await client.next("error", timeout_s=TIMEOUT_S)
        assert error["error"]["code"] == "session_expired"
        async with asyncio.timeout(TIMEOUT_S):
            await closed.wait()
