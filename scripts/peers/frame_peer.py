#!/usr/bin/env python3
"""An independent peer for robotd's frame protocol (docs/serial-protocol.md).

robotd and the simulator share one Swift codec, so a bug in it would be invisible between them.
This peer is written from the protocol document alone: COBS by hand, the CRC from CPython's
binascii.crc_hqx (CRC-16/CCITT with init 0xFFFF = CRC-16/CCITT-FALSE), payloads with struct.
It opens a serial device (the simulator's pty), decodes what arrives for --seconds, optionally
drives both wheels with motor-command frames it encodes itself, and prints one JSON summary.
"""
import argparse
import binascii
import json
import os
import select
import struct
import termios
import time
import tty

TYPES = {0x01: "heartbeat", 0x10: "motor_command", 0x20: "imu", 0x21: "wheel_encoders", 0x22: "range"}


def cobs_encode(data: bytes) -> bytes:
    out = bytearray([0])
    code_index, code = 0, 1
    for byte in data:
        if byte == 0:
            out[code_index] = code
            code_index, code = len(out), 1
            out.append(0)
        else:
            out.append(byte)
            code += 1
            if code == 0xFF:
                out[code_index] = code
                code_index, code = len(out), 1
                out.append(0)
    out[code_index] = code
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(data):
        code = data[i]
        if code == 0 or i + code > len(data):
            raise ValueError("bad COBS block")
        out += data[i + 1:i + code]
        i += code
        if code < 0xFF and i < len(data):
            out.append(0)
    return bytes(out)


def frame(msg_type: int, sequence: int, payload: bytes) -> bytes:
    body = bytes([msg_type, sequence & 0xFF]) + payload
    return cobs_encode(body + struct.pack(">H", binascii.crc_hqx(body, 0xFFFF))) + b"\x00"


def motor_command(motor: int, speed: float, sequence: int) -> bytes:
    return frame(0x10, sequence, struct.pack("<BBBf", motor, 0, 0, speed))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("device")
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--drive", type=float, help="wheel speed (rad/s) to command on both wheels every 50 ms")
    args = parser.parse_args()

    fd = os.open(args.device, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    tty.setraw(fd)
    termios.tcflush(fd, termios.TCIFLUSH)
    counts = {name: 0 for name in TYPES.values()}
    summary = {"crc_errors": 0, "cobs_errors": 0, "unknown_types": 0, "bad_lengths": 0}
    imu_times, accel_z, encoders = [], [], []
    pending = bytearray()
    sequence = 0
    end = time.monotonic() + args.seconds
    next_command = time.monotonic()
    while time.monotonic() < end:
        if args.drive is not None and time.monotonic() >= next_command:
            for motor in (0, 1):
                sequence += 1
                os.write(fd, motor_command(motor, args.drive, sequence))
            next_command += 0.05
        ready, _, _ = select.select([fd], [], [], 0.01)
        if not ready:
            continue
        pending += os.read(fd, 4096)
        while b"\x00" in pending:
            raw, _, rest = pending.partition(b"\x00")
            pending = bytearray(rest)
            if not raw:
                continue
            try:
                decoded = cobs_decode(bytes(raw))
            except ValueError:
                summary["cobs_errors"] += 1
                continue
            if len(decoded) < 4:
                summary["cobs_errors"] += 1
                continue
            body, crc = decoded[:-2], struct.unpack(">H", decoded[-2:])[0]
            if binascii.crc_hqx(body, 0xFFFF) != crc:
                summary["crc_errors"] += 1
                continue
            name = TYPES.get(body[0])
            if name is None:
                summary["unknown_types"] += 1
                continue
            counts[name] += 1
            payload = body[2:]
            if name == "imu":
                if len(payload) not in (29, 33, 41, 45):
                    summary["bad_lengths"] += 1
                    continue
                t, ax, ay, az, gx, gy, gz, flags = struct.unpack("<I3f3fB", payload[:29])
                imu_times.append(t)
                accel_z.append(az)
            elif name == "wheel_encoders":
                if len(payload) != 12:
                    summary["bad_lengths"] += 1
                    continue
                encoders.append(struct.unpack("<Iii", payload))
            elif name == "range" and len(payload) != 9:
                summary["bad_lengths"] += 1
    os.close(fd)
    summary["frames"] = counts
    if len(imu_times) > 1:
        span = ((imu_times[-1] - imu_times[0]) & 0xFFFFFFFF) / 1e6
        summary["imu_hz"] = (len(imu_times) - 1) / span if span > 0 else None
        summary["accel_z_mean"] = sum(accel_z) / len(accel_z)
    if len(encoders) > 1:
        summary["left_ticks_delta"] = (encoders[-1][1] - encoders[0][1])
        summary["right_ticks_delta"] = (encoders[-1][2] - encoders[0][2])
    summary["commands_sent"] = sequence
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
