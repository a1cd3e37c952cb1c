"""Reading a response body with its size capped after decompression, in bounded steps.

httpx decompresses each network read whole, so an endless response or a gzip bomb could grow
past any cap before it is counted; here the raw bytes are inflated at most ``_Inflater.STEP``
bytes at a time and counted as they grow, so memory stays bounded at ``max_body``.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterable, Iterator
from typing import Any

import brotli

from ingest.errors import ErrorKind, FetchError


class _Inflater:
    """Decompresses a body in steps of at most ``STEP`` bytes of output.

    httpx decompresses each network read in one go, so 64 KiB of a gzip bomb become 64 MiB
    before anyone can count them; here no step produces more than ``STEP`` bytes, and the
    caller stops at the size cap.
    """

    STEP = 64 * 1024

    def __init__(self, encoding: str, url: str) -> None:
        self.encoding = encoding
        self.url = url
        self._zlib: Any = None
        self._brotli: Any = None
        self._first = True
        if encoding in ("gzip", "x-gzip", "deflate"):
            self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header
        elif encoding == "br":
            self._brotli = brotli.Decompressor()
        elif encoding not in ("", "identity"):
            raise FetchError(
                url, f"unsupported Content-Encoding {encoding!r}", kind=ErrorKind.DECODING
            )

    def feed(self, data: bytes) -> Iterator[bytes]:
        try:
            if self._zlib is not None:
                yield from self._inflate(data)
            elif self._brotli is not None:
                yield self._brotli.process(data, output_buffer_limit=self.STEP)
                while not self._brotli.can_accept_more_data():
                    yield self._brotli.process(b"", output_buffer_limit=self.STEP)
            else:
                yield data
        except (zlib.error, brotli.error) as exc:
            raise FetchError(
                self.url, f"the {self.encoding} body is corrupt: {exc}", kind=ErrorKind.DECODING
            ) from exc

    def _inflate(self, data: bytes) -> Iterator[bytes]:
        if self._first and self.encoding == "deflate" and data[:1] != b"x":
            self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, no zlib header
        self._first = self._first and not data
        while data:
            if self._zlib.eof:  # another gzip member follows the one that ended
                self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 32)
            yield self._zlib.decompress(data, self.STEP)
            data = self._zlib.unconsumed_tail or (self._zlib.unused_data if self._zlib.eof else b"")


async def read_capped(
    raw_chunks: AsyncIterable[bytes], content_encoding: str, url: str, max_body: int
) -> bytes:
    """The body whose bytes as sent are ``raw_chunks``, decompressed as ``content_encoding``
    says; FetchError as soon as it grows past ``max_body`` bytes, or when it cannot be
    decompressed. ``url`` is the source, for the error."""
    inflater = _Inflater(content_encoding.strip().lower(), url)
    chunks: list[bytes] = []
    size = 0
    async for raw in raw_chunks:
        for chunk in inflater.feed(raw):
            size += len(chunk)
            if size > max_body:
                raise FetchError(
                    url,
                    f"response is larger than {max_body} bytes (after decompression); "
                    "raise max_body for this source if the feed really is that big",
                    kind=ErrorKind.TOO_LARGE,
                )
            chunks.append(chunk)
    return b"".join(chunks)
