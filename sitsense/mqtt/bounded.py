"""paho's client with a bound on what it reads: a packet larger than the inbound limit is refused
before its body is read.

Apart from the client because it changes with paho, not with sitsense: it subclasses paho 2.x's
reader (``_sock_recv`` and its ``_in_packet``), which a paho upgrade may change; the broker tests
check it.
"""

from __future__ import annotations

import errno
from typing import Callable

from .inbound import MAX_INCOMING_PACKET_BYTES

RECV_CHUNK_BYTES = 64 * 1024  # paho asks the socket for a whole packet's length at once; a chunk at a time here


def bounded_client_class() -> type:
    """paho's ``Client`` that refuses a packet larger than MAX_INCOMING_PACKET_BYTES before reading its
    body: it calls ``on_oversized(size)`` and drops the connection (paho reconnects; the rest of the
    packet goes with the old socket), as MQTT 5 does for a packet over its Maximum Packet Size. Reads
    are at most RECV_CHUNK_BYTES, where paho would make a buffer of the packet's whole length.

    It relies on paho 2.x's reader (``_sock_recv`` and its ``_in_packet``); the broker tests check it.
    """
    import paho.mqtt.client as mqtt

    class BoundedClient(mqtt.Client):
        on_oversized: Callable[[int], None] | None = None

        def _sock_recv(self, bufsize: int) -> bytes:
            packet = self._in_packet
            if packet["have_remaining"] and packet["remaining_length"] > MAX_INCOMING_PACKET_BYTES:
                size = int(packet["remaining_length"])
                if self.on_oversized is not None:
                    self.on_oversized(size)
                raise ConnectionAbortedError(errno.EMSGSIZE, f"packet of {size} bytes refused")
            return super()._sock_recv(min(bufsize, RECV_CHUNK_BYTES))

    return BoundedClient
