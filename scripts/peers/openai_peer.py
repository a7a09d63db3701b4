#!/usr/bin/env python3
"""An OpenAI-compatible chat-completions server for the planner back ends' tests, each model name
a scripted behaviour. Standard library only; loopback only; it ends by itself after --lifetime.

Usage: openai_peer.py --models JSON [--lifetime SECONDS]

--models maps a model name to a step or a list of steps. A step is {"mode": M, ...}; "times": N
makes it serve N requests before the next step (the last step serves every later request). Modes:
  ok            200 with a chat completion whose content is "content" (after "delay" seconds);
                "$AUTHORIZATION" and "$KEY" in it become the Authorization header received and the
                key in it, as a server echoing them into an answer would
  status        HTTP "status" (default 500) with "body"
  malformed     200 with "body" that is not a chat completion
  no_choices    200 with "choices": []
  hang          reads the request and never answers (until the client leaves)
  trickle       200 with a Content-Length ("length", default 100000) it never reaches: one byte
                every "interval" seconds
  endless       200 without a length: 64 KiB chunks until the client leaves, one every "interval"
                seconds (default 0: as fast as the connection takes them)
  llama_cpp     like llama-cpp-python's server: HTTP 500 to response_format json_schema,
                "content" to json_object (with or without a schema)
  redirect      HTTP "status" (default 307) with "Location: <location>" (another server, say)
  echo_auth     HTTP "status" (default 400) with a body that repeats the Authorization header it
                received and the key in it ("pad": that many characters of filler first), as some
                servers' error pages do
An unknown model gets 404. A GET (what a client following a 302 or 303 sends) is recorded and gets 404. Prints `listening PORT`, then one JSON line per request received
({"event": "request", "n", "model", "mode", "path", "authorization", "body"}) and one when it ended
({"event": "ended", "n", "bytes_sent", "seconds", "client_closed"}).
"""
import argparse
import json
import select
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Bounds, so that no mode runs away if a client never leaves.
MAX_STREAM_SECONDS = 60.0
MAX_ENDLESS_BYTES = 1 << 30

lock = threading.Lock()
counter = [0]
scripts = {}  # model -> [step, ...]; consumed under `lock`


def emit(record):
    with lock:
        sys.stdout.write(json.dumps(record, sort_keys=True) + "\n")
        sys.stdout.flush()


def next_step(model):
    with lock:
        steps = scripts.get(model)
        if not steps:
            return None
        step = steps[0]
        if len(steps) > 1:
            left = step.get("times", 1) - 1
            if left <= 0:
                steps.pop(0)
            else:
                steps[0] = dict(step, times=left)
        return step


def completion(model, content, finish="stop"):
    return {
        "id": "chatcmpl-peer",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def client_left(sock, wait):
    """True when the client closed its end (or reset it) within `wait` seconds."""
    try:
        readable, _, _ = select.select([sock], [], [], wait)
        if not readable:
            return False
        return sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_json(self, status, payload):
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()
        return len(data)

    def do_GET(self):
        with lock:
            counter[0] += 1
            n = counter[0]
        emit({"event": "request", "n": n, "model": None, "mode": None, "path": self.path, "method": "GET",
              "authorization": self.headers.get("Authorization"), "body": None})
        sent = self.send_json(404, {"error": {"message": "GET is not served"}})
        emit({"event": "ended", "n": n, "bytes_sent": sent, "seconds": 0, "client_closed": False})

    def do_POST(self):
        with lock:
            counter[0] += 1
            n = counter[0]
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode(errors="replace")
        model = body.get("model") if isinstance(body, dict) else None
        step = next_step(model) if model else None
        mode = step.get("mode") if step else None
        emit({"event": "request", "n": n, "model": model, "mode": mode, "path": self.path, "method": "POST",
              "authorization": self.headers.get("Authorization"), "body": body})
        started = time.monotonic()
        sent, closed = 0, False
        try:
            sent, closed = self.serve(step, model, body)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            closed = True
            sent = getattr(self, "_sent", sent)
        emit({"event": "ended", "n": n, "bytes_sent": sent, "seconds": round(time.monotonic() - started, 4),
              "client_closed": closed})

    def serve(self, step, model, body):
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            return self.send_json(404, {"error": {"message": "no such path"}}), False
        if step is None:
            return self.send_json(404, {"error": {"message": f"model {model!r} not found"}}), False
        mode = step.get("mode")
        if mode in ("ok", "llama_cpp"):
            if mode == "llama_cpp":
                kind = (body.get("response_format") or {}).get("type")
                if kind == "json_schema":
                    # What llama-cpp-python's server answers: its pydantic model has no json_schema.
                    return self.send_json(500, {"error": {"message": "Internal Server Error", "type": "internal_server_error"}}), False
            time.sleep(float(step.get("delay", 0)))
            header = self.headers.get("Authorization") or ""
            key = header[len("Bearer "):] if header.startswith("Bearer ") else header
            content = step.get("content", "{}").replace("$AUTHORIZATION", header).replace("$KEY", key)
            return self.send_json(200, completion(model, content, step.get("finish_reason", "stop"))), False
        if mode == "status":
            return self.send_json(int(step.get("status", 500)), step.get("body", "").encode()), False
        if mode == "redirect":
            data = json.dumps({"error": {"message": "moved"}}).encode()
            self.send_response(int(step.get("status", 307)))
            self.send_header("Location", step["location"])
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
            return len(data), False
        if mode == "echo_auth":
            header = self.headers.get("Authorization") or ""
            key = header[len("Bearer "):] if header.startswith("Bearer ") else header
            message = "x" * int(step.get("pad", 0)) + f"invalid request; you sent Authorization: {header} (key {key})"
            return self.send_json(int(step.get("status", 400)), {"error": {"message": message, "api_key": key}}), False
        if mode == "malformed":
            return self.send_json(200, step.get("body", "<html>not a chat completion</html>").encode()), False
        if mode == "no_choices":
            return self.send_json(200, dict(completion(model, ""), choices=[])), False
        self.close_connection = True
        if mode == "hang":
            deadline = time.monotonic() + MAX_STREAM_SECONDS
            while time.monotonic() < deadline:
                if client_left(self.connection, 0.05):
                    return 0, True
            return 0, False
        if mode == "trickle":
            interval = float(step.get("interval", 0.05))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(int(step.get("length", 100000))))
            self.end_headers()
            self.wfile.flush()
            self._sent = 0
            deadline = time.monotonic() + MAX_STREAM_SECONDS
            while time.monotonic() < deadline:
                self.wfile.write(b" ")
                self.wfile.flush()
                self._sent += 1
                if client_left(self.connection, interval):
                    return self._sent, True
            return self._sent, False
        if mode == "endless":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.flush()
            chunk = b'{"choices":[' + b" " * (65536 - 12)
            interval = float(step.get("interval", 0))
            self._sent = 0
            deadline = time.monotonic() + MAX_STREAM_SECONDS
            while self._sent < MAX_ENDLESS_BYTES and time.monotonic() < deadline:
                self.connection.sendall(chunk)
                self._sent += len(chunk)
                if interval > 0 and client_left(self.connection, interval):
                    return self._sent, True
            return self._sent, False
        return self.send_json(400, {"error": {"message": f"unknown mode {mode!r}"}}), False


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", required=True, help="JSON: model name -> step or list of steps")
    parser.add_argument("--lifetime", type=float, default=300.0, help="seconds before it exits by itself")
    args = parser.parse_args()
    for name, steps in json.loads(args.models).items():
        scripts[name] = list(steps) if isinstance(steps, list) else [steps]
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"listening {server.server_address[1]}", flush=True)
    time.sleep(args.lifetime)


if __name__ == "__main__":
    main()
