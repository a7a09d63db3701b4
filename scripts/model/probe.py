"""Checks a running local model server (scripts/model-server.sh start) the way the planner will use it.

    .build/model-venv/bin/python3 scripts/model/probe.py --port N [--runs 5] [--json]

Sends a small plan request in llama-cpp-python's dialect (response_format {"type": "json_object",
"schema": ...}) and checks the answer against the schema (ability names from an enum, no other keys,
numbers); sends the same request in OpenAI's dialect ({"type": "json_schema", "json_schema": ...}) and
reports what the server answers; then times warm requests (median of --runs). Standard library only.
Exit status 1 when a json_object answer is not JSON of the schema's shape.
"""
import argparse
import json
import statistics
import sys
import time
import urllib.error
import urllib.request

ABILITIES = ["goto", "wait", "stop"]
# The shape of a plan as issue 11 §1 generates it: ability names from an enum, no other keys, numeric
# bounds (llama.cpp's grammar does not enforce minimum/maximum: reported, not required, below).
PLAN_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["steps"],
    "properties": {
        "steps": {
            "type": "array",
            "minItems": 1,
            "maxItems": 4,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["ability", "x", "y"],
                "properties": {
                    "ability": {"type": "string", "enum": ABILITIES},
                    "x": {"type": "number", "minimum": -5, "maximum": 5},
                    "y": {"type": "number", "minimum": -5, "maximum": 5},
                },
            },
        }
    },
}
MESSAGES = [
    {"role": "system", "content": "You plan robot moves. Answer with a JSON plan: steps of ability goto, wait or stop, "
                                  "with x and y in metres between -5 and 5."},
    {"role": "user", "content": "Go to 2,3 then stop."},
]


def post(port, body, timeout=120):
    """(HTTP status, body text, seconds)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    start = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode(), time.monotonic() - start
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), time.monotonic() - start


def shape_problems(plan):
    """What makes `plan` not of PLAN_SCHEMA's shape (bounds aside), as words; empty when it is."""
    if not isinstance(plan, dict) or set(plan) != {"steps"}:
        return [f"top level is not {{steps}}: {plan!r}"]
    steps = plan["steps"]
    if not isinstance(steps, list) or not 1 <= len(steps) <= 4:
        return [f"steps is not a list of 1 to 4: {steps!r}"]
    problems = []
    for i, step in enumerate(steps):
        if not isinstance(step, dict) or set(step) != {"ability", "x", "y"}:
            problems.append(f"step {i} keys: {step!r}")
        elif step["ability"] not in ABILITIES:
            problems.append(f"step {i} ability {step['ability']!r} not in the enum")
        elif not all(isinstance(step[k], (int, float)) and not isinstance(step[k], bool) for k in ("x", "y")):
            problems.append(f"step {i} x/y not numbers: {step!r}")
    return problems


def out_of_bounds(plan):
    return [s for s in plan.get("steps", []) if isinstance(s, dict)
            and any(isinstance(s.get(k), (int, float)) and not -5 <= s[k] <= 5 for k in ("x", "y"))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="one JSON object with every figure")
    args = parser.parse_args()
    base = {"model": "smollm2-135m-instruct", "messages": MESSAGES, "temperature": 0, "max_tokens": 200}
    report = {}

    # llama-cpp-python's dialect: the schema inside a json_object response_format.
    status, body, seconds = post(args.port, {**base, "response_format": {"type": "json_object", "schema": PLAN_SCHEMA}})
    entry = {"status": status, "seconds": round(seconds, 3)}
    ok = False
    if status == 200:
        answer = json.loads(body)
        content = answer["choices"][0]["message"]["content"]
        entry.update(content=content, usage=answer.get("usage"), finish_reason=answer["choices"][0].get("finish_reason"))
        try:
            plan = json.loads(content)
            entry["shape_problems"] = shape_problems(plan)
            entry["out_of_bounds_steps"] = out_of_bounds(plan)
            ok = not entry["shape_problems"]
        except json.JSONDecodeError as error:
            entry["shape_problems"] = [f"not JSON: {error}"]
    else:
        entry["body"] = body[:600]
    report["json_object_schema"] = entry

    # OpenAI's dialect, as vLLM, Ollama and OpenAI take it.
    status, body, seconds = post(args.port, {**base, "response_format": {
        "type": "json_schema", "json_schema": {"name": "plan", "strict": True, "schema": PLAN_SCHEMA}}})
    report["json_schema"] = {"status": status, "seconds": round(seconds, 3), "body": body[:600]}

    # Warm latency: the same constrained request again (the first one above warmed the model and
    # the prompt cache), median and all runs.
    times = []
    for _ in range(args.runs):
        status, body, seconds = post(args.port, {**base, "response_format": {"type": "json_object", "schema": PLAN_SCHEMA}})
        if status != 200:
            print(f"probe: warm request answered {status}: {body[:300]}", file=sys.stderr)
            return 1
        times.append(seconds)
    report["warm_seconds"] = {"median": round(statistics.median(times), 3), "runs": [round(t, 3) for t in times],
                              "completion_tokens": json.loads(body).get("usage", {}).get("completion_tokens")}

    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key}: {json.dumps(value, indent=2)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
