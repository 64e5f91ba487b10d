"""The streaming multipart reader: the file comes out whole however the body is cut into
chunks, other fields are skipped, and a truncated or odd body is refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.api.multipart import MultipartError, MultipartFile, boundary_of


def body(content: bytes, boundary: str = "b0UnD", filename: str = "d.log") -> bytes:
    return (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )


def read(raw: bytes, cuts: list[int], boundary: str = "b0UnD") -> tuple[bytes, str | None]:
    reader = MultipartFile(boundary)
    out, start = [], 0
    for cut in [*sorted(cuts), len(raw)]:
        out.append(reader.feed(raw[start:cut]))
        start = max(start, cut)
    reader.finish()
    return b"".join(out), reader.filename


@given(
    content=st.binary(max_size=2000),
    cuts=st.lists(st.integers(min_value=0, max_value=2400), max_size=12),
)
def test_the_file_comes_out_whole_however_the_body_is_chunked(
    content: bytes, cuts: list[int]
) -> None:
    assert read(body(content), cuts) == (content, "d.log")


def test_data_that_begins_like_a_delimiter_is_kept() -> None:
    # a sender picks a boundary its content does not contain (RFC 2046); prefixes may occur
    content = b"\r\n--b0Un\r\n--b0U\r\n-" * 3
    assert read(body(content), [5, 170, 171, 190]) == (content, "d.log")


@pytest.mark.parametrize(
    "raw",
    [
        body(b"data")[:-30],  # cut off inside the file
        b'--b0UnD\r\nContent-Disposition: form-data; name="x"\r\n\r\nno file\r\n--b0UnD--\r\n',
        b"no boundary at all " * 2000,
        b"--b0UnD\r\n" + b"X-Long: " + b"h" * 20_000,
    ],
)
def test_a_body_without_one_whole_file_is_refused(raw: bytes) -> None:
    with pytest.raises(MultipartError):
        read(raw, [])


def test_the_boundary_is_read_from_the_content_type() -> None:
    assert boundary_of('multipart/form-data; boundary="a b"') == "a b"
    assert boundary_of("multipart/form-data; charset=utf-8; boundary=XyZ") == "XyZ"
    assert boundary_of("application/octet-stream") is None
    assert boundary_of("") is None
    with pytest.raises(MultipartError):
        boundary_of("multipart/form-data")
