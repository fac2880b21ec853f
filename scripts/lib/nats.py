#!/usr/bin/env python3
"""The two NATS exchanges scripts/fleet-wasmcloud needs, over NATS's text
protocol (no client library to install):

  nats.py hosts URL COUNT SECONDS
      waits for COUNT wasmCloud hosts' heartbeats (runtime.operator.heartbeat.*)
      and prints one "HOSTNAME HOST_ID" line per host.
  nats.py request URL SUBJECT SECONDS < payload.json
      sends the payload as a request and prints the reply's payload.

Loopback only: URL must be nats://127.0.0.1:PORT.
"""

import json
import socket
import sys
import time


class Nats:
    def __init__(self, url):
        host, port = url.removeprefix("nats://").rsplit(":", 1)
        if host not in ("127.0.0.1", "localhost"):
            raise SystemExit(f"loopback only, not {host}")
        self.sock = socket.create_connection((host, int(port)), timeout=5)
        self.buf = b""
        self.line()  # INFO
        self.send(b'CONNECT {"verbose":false,"pedantic":false,"headers":false}\r\n')

    def send(self, data):
        self.sock.sendall(data)

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise SystemExit("NATS closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exactly(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise SystemExit("NATS closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2 :]
        return data

    def messages(self, deadline):
        """Yields (subject, payload) until the deadline."""
        while time.time() < deadline:
            self.sock.settimeout(max(0.1, deadline - time.time()))
            try:
                line = self.line()
            except socket.timeout:
                return
            if line.startswith(b"PING"):
                self.send(b"PONG\r\n")
            elif line.startswith(b"MSG "):
                parts = line.split()
                size = int(parts[-1])
                yield parts[1].decode(), self.exactly(size)
            elif line.startswith(b"-ERR"):
                raise SystemExit(line.decode())


def hosts(url, count, seconds):
    nats = Nats(url)
    nats.send(b"SUB runtime.operator.heartbeat.* 1\r\n")
    found = {}
    for subject, payload in nats.messages(time.time() + seconds):
        host_id = subject.rsplit(".", 1)[1]
        try:
            beat = json.loads(payload)
        except ValueError:
            beat = {}
        found[host_id] = beat.get("hostname") or beat.get("friendlyName") or host_id
        if len(found) >= count:
            break
    if len(found) < count:
        raise SystemExit(f"{len(found)} of {count} hosts sent a heartbeat in {seconds} s")
    for host_id, name in found.items():
        print(name, host_id)


def request(url, subject, seconds):
    nats = Nats(url)
    inbox = f"_INBOX.fleet.{int(time.time() * 1000)}"
    payload = sys.stdin.buffer.read()
    nats.send(f"SUB {inbox} 1\r\n".encode())
    nats.send(f"PUB {subject} {inbox} {len(payload)}\r\n".encode() + payload + b"\r\n")
    for _, reply in nats.messages(time.time() + seconds):
        sys.stdout.buffer.write(reply + b"\n")
        return
    raise SystemExit(f"no reply on {subject} in {seconds} s")


if __name__ == "__main__":
    command, url, *rest = sys.argv[1:]
    if command == "hosts":
        hosts(url, int(rest[0]), float(rest[1]))
    elif command == "request":
        request(url, rest[0], float(rest[1]))
    else:
        raise SystemExit(__doc__)
