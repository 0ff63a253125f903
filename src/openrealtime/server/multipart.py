"""``multipart/form-data`` request bodies (RFC 7578), read whole and bounded: how audio files arrive.

OpenAI's ``/v1/audio/transcriptions`` and ``/translations`` take a file upload with a few text
fields. The body is read into memory under a byte cap (:func:`read_body`, 413 past it), then split
at its boundary: the parse is linear in the body (``bytes.split`` and ``find``, no regular
expressions), and every part's header block is bounded, so no body can make it slow. Header
parameters (``name``, ``filename``, quoted or RFC 2231-encoded) are read by the standard library's
``email`` header parser. Starlette's own form parser needs the python-multipart package and spools
files to disk; an upload capped at a few tens of megabytes is decoded from memory anyway.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.message import Message
from email.parser import HeaderParser

from openrealtime.exceptions import ProtocolError

CRLF = b"\r\n"
HEADER_END = b"\r\n\r\n"
MAX_PART_HEADER_BYTES = 8 * 1024  # a part's header block: a disposition and a content type
MAX_PARTS = 64  # OpenAI's forms have about fifteen fields; repeated ones (``include[]``) add a few
MAX_FIELD_BYTES = 64 * 1024  # a text field (a prompt is at most 224 tokens)
FORM_DATA = "multipart/form-data"


class BodyTooLargeError(ProtocolError):
    """The request body is over its cap (an HTTP 413)."""


@dataclass(frozen=True)
class UploadedFile:
    """One file part: its bytes, and the name and type the client gave it."""

    data: bytes
    filename: str
    content_type: str | None = None


@dataclass
class FormData:
    """A parsed form: text fields and files by name, each name with its values in order."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, list[UploadedFile]] = field(default_factory=dict)

    def names(self) -> set[str]:
        """Every field and file name the client sent."""
        return set(self.fields) | set(self.files)


async def read_body(chunks: AsyncIterator[bytes], *, declared: str | None, max_bytes: int) -> bytes:
    """The whole request body, refused as soon as it passes ``max_bytes`` (or declares it will).

    Raises:
        BodyTooLargeError: The ``Content-Length`` or the bytes received pass ``max_bytes``.
    """
    message = f"The request body is larger than this server's limit of {max_bytes} bytes."
    if declared is not None and declared.strip().isdigit() and int(declared) > max_bytes:
        raise BodyTooLargeError(message, code="request_too_large")
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLargeError(message, code="request_too_large")
        parts.append(chunk)
    return b"".join(parts)


def _params(header_block: str) -> Message:
    return HeaderParser().parsestr(header_block, headersonly=True)


def boundary_of(content_type: str) -> str:
    """The ``boundary`` of a ``multipart/form-data`` content type.

    Raises:
        ProtocolError: The content type is not ``multipart/form-data`` or has no boundary.
    """
    message = _params(f"Content-Type: {content_type}\r\n\r\n")
    if message.get_content_type() != FORM_DATA:
        raise ProtocolError(
            f"Expected a {FORM_DATA} body with the audio file, not {content_type or 'no Content-Type'!r}.",
            code="invalid_content_type",
        )
    boundary = message.get_param("boundary")
    if not isinstance(boundary, str) or not boundary or len(boundary) > 70:  # RFC 2046 §5.1.1
        raise ProtocolError(f"The {FORM_DATA} Content-Type has no valid boundary.", code="invalid_multipart")
    return boundary


def parse_form(body: bytes, content_type: str) -> FormData:
    """Split ``body`` into its fields and files.

    Raises:
        ProtocolError: The body is not a well-formed form (``invalid_multipart``).
    """
    delimiter = b"--" + boundary_of(content_type).encode("latin-1")
    # Every delimiter but a leading one follows a CRLF that belongs to it (RFC 2046 §5.1.1).
    pieces = (CRLF + body).split(CRLF + delimiter)
    if len(pieces) < 2 or not any(p.startswith(b"--") for p in pieces[1:]):
        raise ProtocolError("The multipart body is cut short: it has no closing boundary.", code="invalid_multipart")
    if len(pieces) - 2 > MAX_PARTS:
        raise ProtocolError(f"The form has more than {MAX_PARTS} parts.", code="invalid_multipart")
    form = FormData()
    for piece in pieces[1:]:
        if piece.startswith(b"--"):  # the close delimiter; what follows is an epilogue
            break
        _add_part(form, piece)
    return form


def _add_part(form: FormData, piece: bytes) -> None:
    line_end = piece.find(CRLF)  # transport padding (spaces, tabs) may follow the boundary
    header_end = piece.find(HEADER_END, line_end)
    if line_end < 0 or piece[:line_end].strip(b" \t") or header_end < 0 or header_end > MAX_PART_HEADER_BYTES:
        raise ProtocolError("A part of the multipart body has no valid header block.", code="invalid_multipart")
    headers = _params(piece[line_end + len(CRLF) : header_end + len(HEADER_END)].decode("utf-8", "replace"))
    content = piece[header_end + len(HEADER_END) :]
    if headers.get_content_disposition() != "form-data":
        raise ProtocolError("Each part of the form needs 'Content-Disposition: form-data'.", code="invalid_multipart")
    name = headers.get_param("name", header="content-disposition")
    if not isinstance(name, str):
        raise ProtocolError("A part of the form has no name.", code="invalid_multipart")
    filename = headers.get_filename()
    if filename is not None:
        content_type = headers["content-type"]
        form.files.setdefault(name, []).append(UploadedFile(content, filename, content_type))
        return
    if len(content) > MAX_FIELD_BYTES:
        raise ProtocolError(f"The field '{name}' is longer than {MAX_FIELD_BYTES} bytes.", code="invalid_multipart")
    try:
        value = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"The field '{name}' is not UTF-8 text.", code="invalid_multipart", param=name) from exc
    form.fields.setdefault(name, []).append(value)
