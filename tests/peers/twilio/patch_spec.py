#!/usr/bin/env python3
"""Make Twilio's OpenAPI 2010-04-01 spec acceptable to Stoplight Prism 5.16.

Twilio encodes array form parameters as repeated keys
(StatusCallbackEvent=initiated&StatusCallbackEvent=answered). Prism only parses them as arrays
when the media type declares it, so for every application/x-www-form-urlencoded request body we
add `encoding: {<prop>: {style: form, explode: true}}` for each array-typed property. Nothing else
changes. Stdlib only.

usage: patch_spec.py INPUT.json OUTPUT.json
"""
import json
import os
import sys

FORM = "application/x-www-form-urlencoded"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def resolve(spec, schema):
    """Follow local $ref chains (#/components/...)."""
    seen = set()
    while isinstance(schema, dict) and "$ref" in schema:
        ref = schema["$ref"]
        if ref in seen or not ref.startswith("#/"):
            break
        seen.add(ref)
        node = spec
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        schema = node
    return schema


def is_array(spec, schema):
    schema = resolve(spec, schema)
    return isinstance(schema, dict) and schema.get("type") == "array"


def patch(spec):
    count = 0
    for item in spec.get("paths", {}).values():
        for method in METHODS:
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            body = resolve(spec, op.get("requestBody"))
            if not isinstance(body, dict):
                continue
            media = body.get("content", {}).get(FORM)
            if not isinstance(media, dict):
                continue
            schema = resolve(spec, media.get("schema"))
            props = schema.get("properties", {}) if isinstance(schema, dict) else {}
            arrays = [name for name, sub in props.items() if is_array(spec, sub)]
            if not arrays:
                continue
            encoding = media.setdefault("encoding", {})
            for name in arrays:
                entry = encoding.setdefault(name, {})
                entry["style"] = "form"
                entry["explode"] = True
                count += 1
    return count


def main(argv):
    if len(argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    with open(argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    if patch(spec) == 0:
        sys.stderr.write("patch_spec: no array form property found; wrong input?\n")
        return 1
    tmp = argv[2] + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(spec, f, ensure_ascii=False, indent=1)
        f.write("\n")
    os.replace(tmp, argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
