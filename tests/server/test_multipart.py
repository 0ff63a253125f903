"""multipart/form-data bodies: fields and files split at the boundary, every malformed body refused."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from openrealtime.exceptions import ProtocolError
from openrealtime.server.multipart import (
    MAX_PARTS,
    BodyTooLargeError,
    FormData,
    UploadedFile,
    boundary_of,
    parse_form,
    read_body,
)

BOUNDARY = "xYz-123"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def part(name: str, value: bytes, *, filename: str | None = None, content_type: str | None = None) -> bytes:
    disposition = f'Content-Disposition: form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    headers = disposition + (f"\r\nContent-Type: {content_type}" if content_type else "")
    return f"--{BOUNDARY}\r\n{headers}\r\n\r\n".encode() + value + b"\r\n"


def body(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def test_fields_and_files_are_split_at_the_boundary() -> None:
    audio = b"RIFF\r\n--xYz-12\r\n\x00\xff binary, with CRLFs and a near-boundary"
    form = parse_form(
        b"a preamble\r\n"
        + body(
            part("model", b"whisper-1"),
            part("timestamp_granularities[]", b"segment"),
            part("timestamp_granularities[]", b"word"),
            part("file", audio, filename="a b.wav", content_type="audio/wav"),
        )
        + b"an epilogue",
        CONTENT_TYPE,
    )
    assert form == FormData(
        fields={"model": ["whisper-1"], "timestamp_granularities[]": ["segment", "word"]},
        files={"file": [UploadedFile(audio, "a b.wav", "audio/wav")]},
    )
    assert form.names() == {"model", "timestamp_granularities[]", "file"}


def test_a_quoted_boundary_and_an_encoded_filename() -> None:
    raw = (
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename*=UTF-8''%C3%A9t%C3%A9.mp3\r\n\r\n"
    ).encode() + b"ID3\r\n"
    form = parse_form(body(raw), f'multipart/form-data; boundary="{BOUNDARY}"')
    assert form.files["file"][0].filename == "été.mp3"
    assert form.files["file"][0].content_type is None


@pytest.mark.parametrize(
    ("content_type", "message"),
    [
        ("application/json", "Expected a multipart/form-data body"),
        ("multipart/form-data", "no valid boundary"),
        ("multipart/form-data; boundary=" + "b" * 71, "no valid boundary"),
    ],
)
def test_content_types_without_a_form_are_refused(content_type: str, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        boundary_of(content_type)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (part("model", b"whisper-1"), "no closing boundary"),
        (b"no boundary at all", "no closing boundary"),
        (body(f"--{BOUNDARY}\r\nContent-Disposition: form-data\r\n\r\nx\r\n".encode()), "has no name"),
        (body(f"--{BOUNDARY}\r\nContent-Disposition: attachment; name=a\r\n\r\nx\r\n".encode()), "form-data"),
        (body(f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=a\r\nx\r\n".encode()), "no valid header"),
        (body(f"--{BOUNDARY}junk\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n".encode()), "no valid"),
        (body(part("prompt", b"\xff\xfe")), "not UTF-8"),
        (body(part("prompt", b"x" * 70_000)), "longer than"),
        (body(*(part(f"f{i}", b"x") for i in range(MAX_PARTS + 1))), "more than"),
    ],
)
def test_malformed_bodies_are_refused(raw: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message) as refused:
        parse_form(raw, CONTENT_TYPE)
    assert refused.value.code == "invalid_multipart"


async def chunks(*pieces: bytes) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


async def test_a_body_is_read_up_to_its_cap() -> None:
    assert await read_body(chunks(b"ab", b"cd"), declared="4", max_bytes=4) == b"abcd"
    with pytest.raises(BodyTooLargeError):
        await read_body(chunks(b"ab"), declared="5", max_bytes=4)  # refused before reading
    with pytest.raises(BodyTooLargeError):
        await read_body(chunks(b"ab", b"cd", b"e"), declared=None, max_bytes=4)  # chunked, no length
