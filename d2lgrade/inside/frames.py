"""Length-prefixed JSON messages over a Unix socket, optionally carrying file descriptors.

The warm engine's three parties talk this way: the grader and the parent (which receives, with each
request, the socket the new child will answer on), and the grader and each child. Standard library
only: the parent and the child load this file as a plain module, like sandbox.py loads isolation.py.
"""
import json
import socket
import struct

HEADER = struct.Struct("!I")
MAX_BYTES = 4 * 2**20          # a reply is a status and a few KiB of error text; more is not ours


class FrameError(Exception):
    """The other side sent something that is not one of our messages."""


def send(sock, message, fds=()):
    data = json.dumps(message).encode()
    payload = HEADER.pack(len(data)) + data
    if fds:
        sent = socket.send_fds(sock, [payload], list(fds))
        sock.sendall(payload[sent:])
    else:
        sock.sendall(payload)


def receive(sock, max_bytes=MAX_BYTES, max_fds=0):
    """(message, descriptors). Raises EOFError when the other side has closed the socket."""
    if max_fds:
        head, fds, _, _ = socket.recv_fds(sock, HEADER.size, max_fds)
    else:
        head, fds = sock.recv(HEADER.size), []
    if not head:
        raise EOFError("the other side closed the connection")
    head += _exactly(sock, HEADER.size - len(head))
    (size,) = HEADER.unpack(head)
    if size > max_bytes:
        raise FrameError(f"a message of {size} bytes, over the {max_bytes} bytes allowed")
    try:
        message = json.loads(_exactly(sock, size))
    except ValueError as exc:
        raise FrameError(f"a message that is not JSON ({exc})") from None
    if type(message) is not dict:
        raise FrameError("a message that is not a JSON object")
    return message, fds


def _exactly(sock, size):
    chunks = []
    while size:
        chunk = sock.recv(min(size, 2**20))
        if not chunk:
            raise EOFError("the other side closed the connection mid-message")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)
