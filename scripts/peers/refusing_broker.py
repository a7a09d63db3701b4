#!/usr/bin/env python3
"""A minimal MQTT 3.1.1 broker for one test: it refuses every subscription (SUBACK 0x80, what a
broker's ACL plugin answers) on the first connection, closes that connection after a second,
then grants them (QoS 1) on every later one. Prints `listening PORT` once ready. Standard
library only. Usage: refusing_broker.py [--refusals N]"""
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


def serve(conn, refuse):
    opened = time.monotonic()
    conn.settimeout(0.2)
    try:
        while True:
            if refuse and time.monotonic() - opened > 1.0:
                return  # drop the refused connection: the client reconnects
            try:
                kind, body = read_packet(conn)
            except socket.timeout:
                continue
            if kind is None:
                return
            t = kind >> 4
            if t == 1:  # CONNECT
                conn.sendall(bytes([0x20, 2, 0, 0]))
            elif t == 8:  # SUBSCRIBE: packet id, then (filter, qos) pairs
                pid = body[:2]
                i, codes = 2, []
                while i < len(body):
                    n = (body[i] << 8) | body[i + 1]
                    i += 2 + n + 1
                    codes.append(0x80 if refuse else 0x01)
                payload = pid + bytes(codes)
                conn.sendall(bytes([0x90, len(payload)]) + payload)
            elif t == 12:  # PINGREQ
                conn.sendall(bytes([0xD0, 0]))
            elif t == 14:  # DISCONNECT
                return
    finally:
        conn.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--refusals", type=int, default=1, help="connections whose subscriptions are refused")
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
        threading.Thread(target=serve, args=(conn, connections <= args.refusals), daemon=True).start()


if __name__ == "__main__":
    main()
