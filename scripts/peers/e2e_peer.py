#!/usr/bin/env python3
"""The Python pipeline of `robotd bench e2e`: what the same job looks like in asyncio + pyserial.

It opens a serial device (a pty the benchmark's driver writes range frames into) with
pyserial-asyncio-fast, and for every range frame: decodes it (COBS, CRC — frame_peer.py's codec,
written from docs/serial-protocol.md, not robotd's), runs robotd's obstacle-avoiding policy with its
default parameters, and writes one motor-command frame per wheel. It prints one JSON line when it is
ready, and its counters as one JSON line when it gets SIGTERM or SIGINT.

--priority/--cpu put it under the same SCHED_FIFO priority and on the same CPU as robotd's dispatch
thread, so that the comparison is of the work, not of the scheduling class.
"""
import argparse
import asyncio
import binascii
import json
import math
import os
import signal
import struct

import serial_asyncio_fast

from frame_peer import cobs_decode, motor_command

RANGE = 0x22


class Drive:
    """robotd's ObstacleAvoidingDrive (Sources/AIOSRobot/Policies), default parameters."""

    def __init__(self) -> None:
        self.turning = False

    def step(self, r: float) -> tuple[float, float]:
        if not math.isfinite(r):
            return 0.0, 0.0
        if not self.turning and r < 0.45:
            self.turning = True
        elif self.turning and r > 0.9:
            self.turning = False
        if self.turning:
            return -5.0, 5.0
        scale = 1.0 if r >= 1.2 else max(0.2, (r - 0.45) / (1.2 - 0.45))
        return 10.0 * scale, 10.0 * scale


class Pipeline(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport = None
        self.pending = bytearray()
        self.drive = Drive()
        self.sequence = 0
        self.counts = {"frames_in": 0, "frames_out": 0, "rejected": 0}

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.pending += data
        while True:
            end = self.pending.find(0)
            if end < 0:
                return
            raw = bytes(self.pending[:end])
            del self.pending[:end + 1]
            if raw:
                self.frame(raw)

    def frame(self, raw: bytes) -> None:
        try:
            decoded = cobs_decode(raw)
        except ValueError:
            self.counts["rejected"] += 1
            return
        if len(decoded) < 4 or binascii.crc_hqx(decoded[:-2], 0xFFFF) != struct.unpack(">H", decoded[-2:])[0]:
            self.counts["rejected"] += 1
            return
        if decoded[0] != RANGE or len(decoded) != 4 + 9:
            return
        _, reading, status = struct.unpack("<IfB", decoded[2:-2])
        r = reading if status == 0 else 4.0 if status == 2 else math.nan
        self.counts["frames_in"] += 1
        left, right = self.drive.step(r)
        for motor, speed in ((0, left), (1, right)):
            self.sequence += 1
            self.transport.write(motor_command(motor, speed, self.sequence))
            self.counts["frames_out"] += 1


def realtime(priority: int | None, cpu: int | None) -> list[str]:
    """Applies what it may; returns what it could not."""
    missing = []
    if cpu is not None:
        try:
            os.sched_setaffinity(0, {cpu})
        except OSError as error:
            missing.append(f"cpu {cpu}: {error.strerror}")
    if priority:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        except OSError as error:
            missing.append(f"SCHED_FIFO {priority}: {error.strerror}")
    return missing


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("device")
    parser.add_argument("--priority", type=int)
    parser.add_argument("--cpu", type=int)
    args = parser.parse_args()
    loop = asyncio.get_running_loop()
    _, pipeline = await serial_asyncio_fast.create_serial_connection(loop, Pipeline, args.device, baudrate=115200)
    missing = realtime(args.priority, args.cpu)
    stop = asyncio.Event()
    for signo in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signo, stop.set)
    # A parent's thread may have started us with these blocked (the mask survives exec): then
    # SIGTERM would stay pending forever.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    print(json.dumps({"ready": True, "not_applied": missing}), flush=True)
    await stop.wait()
    print(json.dumps(pipeline.counts), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
