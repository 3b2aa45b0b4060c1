#!/usr/bin/env python3
"""Reference reader for the control-file differential tests.

For every file named on the command line (or, with ``--list FILE``, one per
line of FILE) this reads it exactly as the agent's Python ancestor did::

    cp = configparser.ConfigParser()
    cp.read_file(open(path, encoding='utf-8'), source=path)

and prints ONE JSON line: ``{"ok": VIEW}`` where VIEW is the string

    json.dumps({"defaults": dict(cp.defaults()),
                "sections": {s: dict(cp.items(s)) for s in cp.sections()}},
               ensure_ascii=False, separators=(',', ':'))

or ``{"error": {"type": ..., "message": str(e), "lineno": ...}}``. The line
itself is written with ensure_ascii=True so that the pipe carries plain ASCII.
One process reads every file: starting Python per file would dominate the run.
"""
import configparser
import json
import sys


def view(path):
    cp = configparser.ConfigParser()
    with open(path, encoding='utf-8') as fp:
        cp.read_file(fp, source=path)
    return json.dumps(
        {
            "defaults": dict(cp.defaults()),
            "sections": {s: dict(cp.items(s)) for s in cp.sections()},
        },
        ensure_ascii=False,
        separators=(',', ':'),
    )


def lineno(e):
    line = getattr(e, 'lineno', None)
    if line is None and isinstance(e, configparser.ParsingError) and e.errors:
        line = e.errors[0][0]
    return line


def one(path):
    try:
        return {"ok": view(path)}
    except (configparser.Error, UnicodeDecodeError) as e:
        return {"error": {"type": type(e).__name__, "message": str(e), "lineno": lineno(e)}}
    except Exception as e:  # anything else is reported, never fatal to the whole run
        return {"error": {"type": type(e).__name__, "message": str(e), "lineno": None, "unexpected": True}}


def main(argv):
    if len(argv) >= 2 and argv[0] == '--list':
        with open(argv[1], encoding='utf-8') as f:
            paths = [p for p in f.read().split('\n') if p]
    else:
        paths = argv
    out = sys.stdout
    for path in paths:
        out.write(json.dumps(one(path)) + '\n')
    out.flush()
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
