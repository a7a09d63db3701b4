#!/usr/bin/env python3
"""A minimal MQTT 3.1.1 broker for one test: it refuses every subscription (SUBACK 0x80, what a
broker's ACL plugin answers) on the first connection, closes that connection after a second,
then grants them (QoS 1) on every later one. It never acknowledges a PUBLISH (a QoS 1 message
stays unconfirmed) and delivers nothing. With `--refusals 0 --drop-first-after S`, the first
connection is granted at once and closed after S seconds; `--suback-delay S` answers the
SUBSCRIBEs of every later connection S seconds late (the CONNACK comes at once). Prints
`listening PORT` once ready. Standard library only.
Usage: refusing_broker.py [--refusals N] [--drop-first-after S] [--suback-delay S]"""
import argparse
import socket
import threading
import time


def read_packet(conn):
    header = conn.recv(1)
    if not header:
        return None, None
    length, shift = 0, 0
    while True:
        b = conn.recv(1)
        if not b:
            return None, None
        length |= (b[0] & 0x7F) << shift
        shift += 7
        if not b[0] & 0x80:
            break
    body = b""
    while len(body) < length:
        chunk = conn.recv(length - len(body))
        if not chunk:
            return None, None
        body += chunk
    return header[0], body


def serve(conn, refuse, drop_after=None, suback_delay=0.0):
    opened = time.monotonic()
    conn.settimeout(0.2)
    lock = threading.Lock()

    def send(data):
        with lock:
            try:
                conn.sendall(data)
            except OSError:
                pass

    try:
        while True:
            if refuse and time.monotonic() - opened > 1.0:
                return  # drop the refused connection: the client reconnects
            if drop_after is not None and time.monotonic() - opened > drop_after:
                return
            try:
                kind, body = read_packet(conn)
            except socket.timeout:
                continue
            if kind is None:
                return
            t = kind >> 4
            if t == 1:  # CONNECT
                send(bytes([0x20, 2, 0, 0]))
            elif t == 8:  # SUBSCRIBE: packet id, then (filter, qos) pairs
                pid = body[:2]
                i, codes = 2, []
                while i < len(body):
                    n = (body[i] << 8) | body[i + 1]
                    i += 2 + n + 1
                    codes.append(0x80 if refuse else 0x01)
                packet = bytes([0x90, len(pid) + len(codes)]) + pid + bytes(codes)
                if suback_delay > 0:
                    threading.Timer(suback_delay, send, args=(packet,)).start()
                else:
                    send(packet)
            elif t == 12:  # PINGREQ
                send(bytes([0xD0, 0]))
            elif t == 14:  # DISCONNECT
                return
    finally:
        conn.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--refusals", type=int, default=1, help="connections whose subscriptions are refused")
    parser.add_argument("--drop-first-after", type=float, default=None, help="close the first connection after this many s")
    parser.add_argument("--suback-delay", type=float, default=0.0, help="s before the SUBACKs of connections after the first")
    args = parser.parse_args()
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    print("listening", server.getsockname()[1], flush=True)
    connections = 0
    while True:
        conn, _ = server.accept()
        connections += 1
        drop = args.drop_first_after if connections == 1 else None
        delay = args.suback_delay if connections > 1 else 0.0
        threading.Thread(target=serve, args=(conn, connections <= args.refusals, drop, delay), daemon=True).start()


if __name__ == "__main__":
    main()
