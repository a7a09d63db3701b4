#!/usr/bin/env python3
"""An independent MQTT client for robotd's telemetry (docs/mqtt.md): subscribes to PREFIX#,
validates every payload of every topic against docs/schemas/<topic with / as .>.schema.json,
asks for the audit once, and prints one JSON summary line when robotd says `offline` (or the time
is up). Exit status 0 only when every payload was valid and every required topic was seen.

    telemetry_peer.py --broker 127.0.0.1:1883 --prefix robotd/rig/ --schemas docs/schemas \
        --require status,state,deadlines --seconds 30

It prints `ready` once subscribed. Written against paho-mqtt 2 and jsonschema (scripts/peers/
requirements.txt, installed into .build/venv by scripts/setup-venv.sh).
"""
import argparse
import json
import os
import sys
import threading
import time

import jsonschema
import paho.mqtt.client as mqtt

# Topics under the prefix that others publish to robotd: not telemetry, not validated here.
INBOUND = ("estop", "estop/reset", "goal", "audit/request")


def inbound(relative):
    return any(relative == name or relative.startswith(name + "/") for name in INBOUND)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--broker", required=True, help="HOST:PORT")
    parser.add_argument("--prefix", required=True, help="e.g. robotd/rig/")
    parser.add_argument("--schemas", required=True, help="the folder of *.schema.json")
    parser.add_argument("--require", default="", help="comma-separated topics (relative) that must be seen")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--no-audit-request", action="store_true")
    args = parser.parse_args()
    host, port = args.broker.rsplit(":", 1)

    validators = {}
    for name in os.listdir(args.schemas):
        if name.endswith(".schema.json"):
            with open(os.path.join(args.schemas, name)) as f:
                schema = json.load(f)
            jsonschema.Draft202012Validator.check_schema(schema)
            validators[name[: -len(".schema.json")].replace(".", "/")] = jsonschema.Draft202012Validator(schema)

    lock = threading.Lock()
    seen = {}
    errors = []
    last_seq = {}
    seq_gaps = {}
    misses = []
    last_deadlines = None
    last_state = None
    statuses = []
    audit_records = None
    subscribed = threading.Event()
    done = threading.Event()
    audit_asked = [args.no_audit_request]

    def on_connect(client, userdata, flags, reason_code, properties):
        client.subscribe(args.prefix + "#", qos=1)

    def on_subscribe(client, userdata, mid, reason_codes, properties):
        subscribed.set()

    def on_message(client, userdata, message):
        nonlocal last_deadlines, last_state, audit_records
        relative = message.topic[len(args.prefix):]
        if inbound(relative):
            return
        with lock:
            seen[relative] = seen.get(relative, 0) + 1
            validator = validators.get(relative)
            if validator is None:
                errors.append({"topic": relative, "error": "no schema for this topic (unknown or reserved)"})
                return
            text = message.payload.decode("utf-8", errors="replace")
            if relative == "status":
                instance = text
                if not message.retain:
                    statuses.append(text)
            else:
                try:
                    instance = json.loads(text)
                except ValueError as e:
                    errors.append({"topic": relative, "error": "not JSON: %s" % e, "payload": text[:200]})
                    return
            problems = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
            for p in problems[:3]:
                errors.append({"topic": relative, "error": p.message, "path": "/".join(map(str, p.path)), "payload": text[:300]})
            if problems or not isinstance(instance, dict):
                return
            seq = instance.get("seq")
            if not message.retain and isinstance(seq, int):
                previous = last_seq.get(relative)
                if previous is not None and seq != previous + 1:
                    seq_gaps[relative] = seq_gaps.get(relative, 0) + 1
                last_seq[relative] = seq
            if relative == "deadlines/miss":
                misses.append({"task": instance["task"], "suppressed": instance["suppressed"], "seq": instance["seq"]})
            elif relative == "deadlines":
                last_deadlines = instance
                if not audit_asked[0]:
                    audit_asked[0] = True
                    client.publish(args.prefix + "audit/request", b"please", qos=1)
            elif relative == "audit":
                audit_records = len(instance["records"])
            elif relative == "state":
                last_state = instance

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="telemetry-peer-%d" % os.getpid())
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe

    def on_message_checked(client, userdata, message):
        on_message(client, userdata, message)
        with lock:
            if statuses and statuses[-1] == "offline" and "online" in statuses:
                done.set()

    client.on_message = on_message_checked
    client.connect(host, int(port), keepalive=30)
    client.loop_start()
    if not subscribed.wait(10):
        print(json.dumps({"error": "could not subscribe"}), flush=True)
        return 2
    print("ready", flush=True)
    done.wait(args.seconds)
    # Stragglers published just before `offline` (QoS 1 on another topic) get a moment.
    time.sleep(0.3)
    client.loop_stop()
    client.disconnect()

    required = [t for t in args.require.split(",") if t]
    with lock:
        missing = [t for t in required if t not in seen]
        summary = {
            "seen": seen,
            "errors": errors[:30],
            "error_count": len(errors),
            "missing": missing,
            "statuses": statuses,
            "seq_gaps": seq_gaps,
            "miss_events": len(misses),
            "miss_suppressed_in_events": sum(m["suppressed"] for m in misses),
            "miss_events_by_task": {t: sum(1 for m in misses if m["task"] == t) for t in {m["task"] for m in misses}},
            "last_deadlines_miss_events": last_deadlines["miss_events"] if last_deadlines else None,
            "last_deadlines_misses_by_task": {t["name"]: t["since_start"]["misses"] for t in last_deadlines["tasks"]} if last_deadlines else None,
            "audit_records": audit_records,
            "last_state_control_link": last_state.get("control_link") if last_state else None,
            "finished": done.is_set(),
        }
    print(json.dumps(summary), flush=True)
    return 0 if not errors and not missing and done.is_set() else 1


if __name__ == "__main__":
    sys.exit(main())
