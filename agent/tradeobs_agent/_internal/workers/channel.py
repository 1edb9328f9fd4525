"""Messages between the members of a group and their leader: length-prefixed frames on a Unix stream socket.

>>> conn = Conn(sock)                  # non-blocking; the group thread's selector drives it   # doctest: +SKIP
>>> conn.send(HELLO, b'{"member": "4121-ab12cd34"}')
>>> for kind, body in conn.receive(): ...

A frame is ``<u32 length><u8 kind><body>``. Nothing received is trusted: a
frame longer than :data:`MAX_MESSAGE` or an unknown kind ends the connection.
What waits to be sent is bounded (:data:`MAX_BUFFERED`): a peer that stops
reading is disconnected rather than allowed to grow this process's memory.
"""

from __future__ import annotations

import socket
import struct
from collections import deque

__all__ = [
    "ACTIVE",
    "EVENTS",
    "HELLO",
    "KINDS",
    "LIVE",
    "MAX_BUFFERED",
    "MAX_MESSAGE",
    "SYNC",
    "SYNCED",
    "Conn",
]

_HEAD = struct.Struct("<IB")
MAX_MESSAGE = 64 << 20
MAX_BUFFERED = 64 << 20

# member -> leader
HELLO = 1  # {"member", "pid", "active"}: who this is; whether its live view has clients
EVENTS = 2  # [[kind, ts, data], ...]: live events published in the member, in order
SYNCED = 3  # {"token"}: the member wrote a fresh snapshot for sync `token`
ACTIVE = 4  # {}: the member's live view got its first client
# leader -> member
SYNC = 10  # {"token"}: write a fresh snapshot now (a scrape is waiting)
LIVE = 11  # a live delivery, encoded by the live layer (opaque here)
KINDS = frozenset({HELLO, EVENTS, SYNCED, ACTIVE, SYNC, LIVE})


class Conn:
    """One end of a connection: buffered, non-blocking sends and whole-frame receives."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.member = ""
        self.pid = 0
        self.active = False
        self._rbuf = bytearray()
        self._wbuf: deque[memoryview] = deque()
        self._wlen = 0
        self.closed = False

    def fileno(self) -> int:
        return self.sock.fileno()

    @property
    def wants_write(self) -> bool:
        return self._wlen > 0

    def send(self, kind: int, body: bytes) -> bool:
        """Queue one frame and send what the socket takes now. False: the peer is too far behind (close it)."""
        if self.closed:
            return False
        self._wbuf.append(memoryview(_HEAD.pack(len(body), kind)))
        if body:
            self._wbuf.append(memoryview(body))
        self._wlen += _HEAD.size + len(body)
        if self._wlen > MAX_BUFFERED:
            return False
        return self.flush()

    def flush(self) -> bool:
        """Send what the socket takes without blocking. False when the connection is broken."""
        buf = self._wbuf
        try:
            while buf:
                head = buf[0]
                n = self.sock.send(head)
                self._wlen -= n
                if n == len(head):
                    buf.popleft()
                else:
                    buf[0] = head[n:]
                    break
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            return False
        return True

    def receive(self) -> list[tuple[int, bytes]]:
        """Every whole frame that arrived. Raises ``ConnectionError`` at EOF or on a frame that is not ours."""
        buf = self._rbuf
        while True:
            try:
                chunk = self.sock.recv(1 << 20)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                raise ConnectionError(str(exc)) from None
            if not chunk:
                if buf:
                    self._frames()  # whatever is complete still counts
                raise ConnectionError("closed by peer")
            buf += chunk
            if len(chunk) < (1 << 20):
                break
        return self._frames()

    def _frames(self) -> list[tuple[int, bytes]]:
        buf = self._rbuf
        out: list[tuple[int, bytes]] = []
        pos = 0
        size = _HEAD.size
        while len(buf) - pos >= size:
            length, kind = _HEAD.unpack_from(buf, pos)
            if length > MAX_MESSAGE or kind not in KINDS:
                raise ConnectionError(f"not a tradeobs frame (kind {kind}, {length} bytes)")
            if len(buf) - pos - size < length:
                break
            out.append((kind, bytes(buf[pos + size : pos + size + length])))
            pos += size + length
        if pos:
            del buf[:pos]
        return out

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.sock.close()
