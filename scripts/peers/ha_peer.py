#!/usr/bin/env python3
"""An independent check of robotd's Home Assistant discovery (docs/mqtt.md, "Home Assistant"),
done the way Home Assistant would use it: subscribes to everything on the broker, and for every
discovery config under DISCOVERY_PREFIX/<component>/NODE/<object_id>/config checks that

  - it is a JSON object with the keys Home Assistant needs (unique_id, name, the device with its
    identifiers, availability on a topic that really says `online`, state_topic and
    value_template, or command_topic and payload_press for a button), unique ids unique;
  - its state_topic really receives payloads during the run;
  - its value_template, rendered with Jinja2 as Home Assistant renders it (`value_json` is the
    payload's JSON, `value` its text, the result stripped) on every payload received there, yields
    a number for a sensor ('' — ignored by Home Assistant — and 'None' — unknown — allowed, at
    least one number) and payload_on or payload_off for a binary sensor (at least once each when
    --expect-both-states); json_attributes_template yields a JSON object;
  - a sensor's unit_of_measurement, when it has one, is a non-empty string of at most 32
    characters (the duration class's one of Home Assistant's time units); with
    --expect-unit OBJECT_ID=UNIT (repeatable; an empty UNIT: none) the entity has exactly it;
  - with --press: once the binary sensor has rendered payload_off, it publishes the button's
    payload_press on its command_topic, and sees the state topic say latched by a remote stop.

It prints `ready` once subscribed, then one JSON summary line when robotd says `offline` (or the
time is up); exit status 0 only when nothing failed.

    ha_peer.py --broker 127.0.0.1:1883 --node robotd_rig --seconds 30 --press

With --retained-only it subscribes to DISCOVERY_PREFIX/#, waits a moment after the SUBACK for the
retained messages, and prints the topics of the non-empty retained configs (what Home Assistant
would still set up), exit status 0.

Written against paho-mqtt 2 and Jinja2 3 (scripts/peers/requirements.txt, installed into
.build/venv by scripts/setup-venv.sh).
"""
import argparse
import json
import math
import os
import sys
import threading
import time

import jinja2
import jinja2.sandbox
import paho.mqtt.client as mqtt

COMPONENTS = ("sensor", "binary_sensor", "button")
STATE_CLASSES = ("measurement", "total", "total_increasing")
# Home Assistant's units of the duration device class (UnitOfTime; µs spelt with the Greek mu).
DURATION_UNITS = ("d", "h", "min", "s", "ms", "\u03bcs")
KEEP = 400  # payloads kept per topic


def ha_environment():
    """Jinja2 as Home Assistant sets it up for MQTT templates: sandboxed, with its filters that
    differ from Jinja2's. Undefined is strict here (Home Assistant only logs it): a template that
    reads a key a payload does not have, without `default`, fails."""
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined)
    missing = object()

    def ha_float(value, default=missing):
        try:
            return float(value)
        except (ValueError, TypeError):
            if default is missing:
                raise ValueError("float got invalid input %r" % (value,))
            return default

    def ha_int(value, default=missing, base=10):
        try:
            return int(value, base) if isinstance(value, str) else int(value)
        except (ValueError, TypeError):
            if default is missing:
                raise ValueError("int got invalid input %r" % (value,))
            return default

    def ha_round(value, precision=0, method="common", default=missing):
        number = ha_float(value, default)
        if number is default and default is not missing:
            return default
        if method == "ceil":
            return math.ceil(number * 10 ** precision) / 10 ** precision
        if method == "floor":
            return math.floor(number * 10 ** precision) / 10 ** precision
        return round(number, precision)

    env.filters["float"] = ha_float
    env.filters["int"] = ha_int
    env.filters["round"] = ha_round
    # Home Assistant's tojson is plain JSON (orjson), not Jinja2's HTML-safe variant.
    env.filters["tojson"] = lambda value: json.dumps(value)
    return env


def render(env, template, payload):
    text = payload.decode("utf-8", errors="replace")
    variables = {"value": text}
    try:
        variables["value_json"] = json.loads(text)
    except ValueError:
        pass
    return env.from_string(template).render(**variables).strip()


def is_number(text):
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--broker", required=True, help="HOST:PORT")
    parser.add_argument("--discovery-prefix", default="homeassistant")
    parser.add_argument("--node", required=True, help="the discovery node id, robotd_<robot-id>")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--press", action="store_true", help="press the button once the robot is seen running")
    parser.add_argument("--press-after", type=float, default=1.0, help="seconds after the first OFF before pressing")
    parser.add_argument("--expect-both-states", action="store_true", help="the binary sensor must render on and off")
    parser.add_argument("--expect-unit", action="append", default=[], metavar="OBJECT_ID=UNIT",
                        help="the entity's unit_of_measurement must be UNIT (empty: none); repeatable")
    parser.add_argument("--retained-only", action="store_true")
    parser.add_argument("--settle", type=float, default=1.0, help="--retained-only: seconds to wait after the SUBACK")
    args = parser.parse_args()
    host, port = args.broker.rsplit(":", 1)
    dp = args.discovery_prefix

    lock = threading.Lock()
    configs = {}          # discovery topic -> last payload (bytes)
    messages = {}         # other topic -> [(payload, retained, t)]
    subscribed = threading.Event()
    done = threading.Event()
    statuses = []
    env = ha_environment()
    button = {"pressed_at": None, "latched_at": None, "command_topic": None, "payload": None, "error": None}
    first_off = [None]

    def on_connect(client, userdata, flags, reason_code, properties):
        client.subscribe(dp + "/#" if args.retained_only else "#", qos=1)

    def on_subscribe(client, userdata, mid, reason_codes, properties):
        subscribed.set()

    def discovery_topic(topic):
        return topic.startswith(dp + "/") and topic.endswith("/config")

    def component_of(topic):
        return topic[len(dp) + 1:].split("/")[0]

    def on_message(client, userdata, message):
        now = time.monotonic()
        with lock:
            if discovery_topic(message.topic):
                if message.payload:
                    configs[message.topic] = (message.payload, message.retain)
                else:
                    configs.pop(message.topic, None)
                return
            kept = messages.setdefault(message.topic, [])
            kept.append((message.payload, message.retain, now))
            del kept[:-KEEP]
            text = message.payload.decode("utf-8", errors="replace")
            if message.topic.endswith("/status") and not message.retain:
                statuses.append(text)
                if text == "offline" and "online" in statuses:
                    done.set()
            # The button: pressed once the binary sensor renders off, judged on its own template.
            if args.press and button["pressed_at"] is None:
                for topic, (payload, _) in list(configs.items()):
                    if component_of(topic) != "binary_sensor":
                        continue
                    c = json.loads(payload)
                    if message.topic == c.get("state_topic"):
                        try:
                            if render(env, c["value_template"], message.payload) == c.get("payload_off", "OFF") and first_off[0] is None:
                                first_off[0] = now
                        except Exception:  # judged in the summary
                            pass
                press = [json.loads(p) for t, (p, _) in configs.items() if component_of(t) == "button"]
                if first_off[0] is not None and now - first_off[0] >= args.press_after and press:
                    b = press[0]
                    button["command_topic"], button["payload"] = b.get("command_topic"), b.get("payload_press", "PRESS")
                    if button["command_topic"]:
                        client.publish(button["command_topic"], button["payload"], qos=b.get("qos", 0), retain=bool(b.get("retain", False)))
                        button["pressed_at"] = now
            elif button["pressed_at"] is not None and button["latched_at"] is None:
                try:
                    state = json.loads(text)
                    if isinstance(state, dict) and state.get("estop", {}).get("latched") and state["estop"].get("latch_cause") == "remote-stop":
                        button["latched_at"] = now
                except ValueError:
                    pass

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="ha-peer-%d" % os.getpid())
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect(host, int(port), keepalive=30)
    client.loop_start()
    if not subscribed.wait(10):
        print(json.dumps({"error": "could not subscribe"}), flush=True)
        return 2
    print("ready", flush=True)

    if args.retained_only:
        time.sleep(args.settle)
        client.loop_stop()
        client.disconnect()
        with lock:
            retained = sorted(t for t, (_, r) in configs.items() if r)
        print(json.dumps({"retained": retained}), flush=True)
        return 0

    done.wait(args.seconds)
    time.sleep(0.3)
    client.loop_stop()
    client.disconnect()

    with lock:
        summary = judge(args, env, configs, messages, statuses, button)
    summary["finished"] = done.is_set()
    print(json.dumps(summary), flush=True)
    return 0 if summary["error_count"] == 0 and done.is_set() else 1


def judge(args, env, configs, messages, statuses, button):
    dp = args.discovery_prefix
    entities = []
    unique_ids = {}
    total_errors = 0
    for topic in sorted(configs):
        payload, _ = configs[topic]
        errors = []
        entity = {"topic": topic, "errors": errors}
        entities.append(entity)
        parts = [dp] + topic[len(dp) + 1:].split("/")
        if len(parts) != 5 or parts[1] not in COMPONENTS or parts[2] != args.node:
            errors.append("topic is not %s/<sensor|binary_sensor|button>/%s/<object_id>/config" % (dp, args.node))
        component = parts[1] if len(parts) > 1 else "?"
        entity["component"] = component
        entity["object_id"] = parts[3] if len(parts) == 5 else None
        try:
            c = json.loads(payload)
        except ValueError as e:
            errors.append("not JSON: %s" % e)
            continue
        if not isinstance(c, dict):
            errors.append("not a JSON object")
            continue
        entity["config"] = c
        required = ("name", "unique_id", "device") + (("availability",) if "availability" in c else
                                                          ("availability_topic", "payload_available", "payload_not_available"))
        for key in required:
            if key not in c:
                errors.append("no %s" % key)
        if "availability" in c and "availability_topic" in c:
            errors.append("availability and availability_topic together (Home Assistant refuses the config)")
        uid = c.get("unique_id")
        if uid in unique_ids:
            errors.append("unique_id %s also in %s" % (uid, unique_ids[uid]))
        unique_ids[uid] = topic
        device = c.get("device", {})
        if args.node not in device.get("identifiers", []):
            errors.append("device identifiers %r lack %s" % (device.get("identifiers"), args.node))
        for key in ("name", "manufacturer", "model", "sw_version"):
            if not device.get(key):
                errors.append("device has no %s" % key)
        entries = c.get("availability") or [{"topic": c.get("availability_topic"), "payload_available": c.get("payload_available", "online"),
                                              "payload_not_available": c.get("payload_not_available", "offline")}]
        if "availability" in c and c.get("availability_mode") not in (None, "all", "any", "latest"):
            errors.append("availability_mode %r" % c.get("availability_mode"))
        entity["availability_seen"] = []
        for entry in entries:
            available = entry.get("payload_available", "online")
            not_available = entry.get("payload_not_available", "offline")
            if (available, not_available) != ("online", "offline"):
                errors.append("availability payloads %r/%r are not robotd's status words" % (available, not_available))
            said = []
            for p, _, _ in messages.get(entry.get("topic"), []):
                if entry.get("value_template"):
                    try:
                        said.append(render(env, entry["value_template"], p))
                    except Exception as e:  # a template that fails on a real payload is a wrong config
                        errors.append("availability template on %s: %s" % (entry.get("topic"), e))
                        break
                else:
                    said.append(p.decode())
            entity["availability_seen"].append(said[-3:])
            if available not in said:
                errors.append("availability topic %s never said %s" % (entry.get("topic"), available))
            if any(x not in (available, not_available) for x in said):
                errors.append("availability on %s rendered %r, not %s/%s" % (entry.get("topic"), sorted(set(said)), available, not_available))

        if component == "button":
            for key in ("command_topic", "payload_press"):
                if key not in c:
                    errors.append("no %s" % key)
            if c.get("retain"):
                errors.append("a retained press would stop the robot again at every reconnect")
            continue

        for key in ("state_topic", "value_template"):
            if key not in c:
                errors.append("no %s" % key)
        if errors:
            continue
        received = [(p, r) for p, r, _ in messages.get(c["state_topic"], [])]
        fresh = [p for p, r in received if not r]
        entity["received"] = len(fresh)
        if not fresh:
            errors.append("state_topic %s received no payload during the run" % c["state_topic"])
        renders = []
        for p in fresh:
            try:
                renders.append(render(env, c["value_template"], p))
            except Exception as e:  # a template that fails on a real payload
                errors.append("value_template failed on %s: %s: %s" % (p[:120], type(e).__name__, e))
                break
        entity["renders"] = renders[-5:]
        if component == "sensor":
            unit = c.get("unit_of_measurement")
            if unit is not None and not (isinstance(unit, str) and 0 < len(unit) <= 32):
                errors.append("unit_of_measurement %r is not a short non-empty string" % (unit,))
            if c.get("state_class") not in STATE_CLASSES:
                errors.append("state_class %r" % c.get("state_class"))
            if c.get("device_class") == "duration" and c.get("unit_of_measurement") not in DURATION_UNITS:
                errors.append("unit %r is not one of the duration class's %s" % (c.get("unit_of_measurement"), DURATION_UNITS))
            expire = c.get("expire_after")
            if not isinstance(expire, int) or expire <= 0:
                errors.append("expire_after %r is not a positive whole number of seconds" % expire)
            bad = [r for r in renders if r not in ("", "None") and not is_number(r)]
            numbers = [float(r) for r in renders if is_number(r)]
            entity["numbers"] = len(numbers)
            entity["last_number"] = numbers[-1] if numbers else None
            if bad:
                errors.append("value_template yields no number: %r" % bad[:3])
            if fresh and not numbers:
                errors.append("value_template never yielded a number on %d payloads" % len(fresh))
            if c.get("state_class") == "total_increasing" and any(b < a for a, b in zip(numbers, numbers[1:])):
                errors.append("a total_increasing value went down within one run: %r" % numbers)
        else:
            on, off = c.get("payload_on", "ON"), c.get("payload_off", "OFF")
            bad = [r for r in renders if r not in (on, off, "None")]
            entity["on"] = renders.count(on)
            entity["off"] = renders.count(off)
            if bad:
                errors.append("value_template yields neither %s nor %s: %r" % (on, off, bad[:3]))
            if fresh and not (entity["on"] or entity["off"]):
                errors.append("value_template never yielded %s or %s" % (on, off))
            if args.expect_both_states and not (entity["on"] and entity["off"]):
                errors.append("the binary sensor rendered %d on and %d off: expected both" % (entity["on"], entity["off"]))
        if "json_attributes_template" in c:
            topic = c.get("json_attributes_topic", c["state_topic"])
            for p, r, _ in messages.get(topic, []):
                try:
                    attributes = json.loads(render(env, c["json_attributes_template"], p))
                    if not isinstance(attributes, dict):
                        raise ValueError("not a JSON object")
                    entity["attributes"] = attributes
                except Exception as e:
                    errors.append("json_attributes_template on %s: %s: %s" % (p[:120], type(e).__name__, e))
                    break
    for expectation in args.expect_unit:
        object_id, _, unit = expectation.partition("=")
        entity = next((e for e in entities if e.get("object_id") == object_id), None)
        if entity is None:
            entities.append({"topic": None, "object_id": object_id, "errors": ["--expect-unit: no entity %s" % object_id]})
            continue
        have = entity.get("config", {}).get("unit_of_measurement")
        if have != (unit or None):
            entity["errors"].append("unit_of_measurement %r, expected %r" % (have, unit or None))
    for entity in entities:
        total_errors += len(entity["errors"])
    press = None
    if args.press:
        press = {"command_topic": button["command_topic"], "payload": button["payload"], "pressed": button["pressed_at"] is not None,
                 "latched": button["latched_at"] is not None,
                 "press_to_latched_ms": round((button["latched_at"] - button["pressed_at"]) * 1000, 1) if button["latched_at"] else None}
        if not press["latched"]:
            total_errors += 1
    return {"configs": len(configs), "entities": entities, "error_count": total_errors, "statuses": statuses, "button": press}


if __name__ == "__main__":
    sys.exit(main())
