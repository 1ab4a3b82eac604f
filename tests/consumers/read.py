"""Reads an export the way its real consumer does and prints {NAME: value} as JSON.

usage: read.py FORMAT FILE
  dotenv      python-dotenv's dotenv_values (interpolation on, its default)
  json        Python's json module
  sls         PyYAML's safe_load (YAML 1.1, as Salt reads pillar); the `secrets` mapping
  supervisor  supervisord's own config reader, on a [program:app] section holding the line
  systemd     systemd's EnvironmentFile= rules: a port of env-file.c's parser, then
              env_value_is_valid (systemd itself cannot run here)
"""
import json
import os
import sys
import tempfile


def supervisor(path):
    from supervisor.options import ServerOptions

    with open(path, encoding="utf-8") as f:
        line = f.read()
    with tempfile.TemporaryDirectory() as d:
        conf = os.path.join(d, "supervisord.conf")
        with open(conf, "w", encoding="utf-8") as f:
            f.write("[supervisord]\nlogfile=%s/s.log\n\n[program:app]\ncommand=/bin/true\n" % d)
            f.write(line)
        opts = ServerOptions()
        opts.configfile = conf
        opts.process_config(do_usage=False)
        return dict(opts.process_group_configs[0].process_configs[0].environment or {})


def systemd(path):
    NEWLINE, WHITESPACE, COMMENTS, ESC = "\n\r", " \t\n\r", "#;", '"\\`$'
    with open(path, encoding="utf-8") as f:
        text = f.read()
    out = {}
    state, key, value = "PRE_KEY", "", None

    def push():
        k = key.rstrip(WHITESPACE)
        v = value if value is not None else ""
        # env_value_is_valid: no control characters but tab and newline.
        if any((ord(c) < 32 and c not in "\t\n") or ord(c) == 127 for c in v):
            return
        out[k] = v

    for c in text:
        if state == "PRE_KEY":
            if c in COMMENTS:
                state = "COMMENT"
            elif c not in WHITESPACE:
                state, key = "KEY", c
        elif state == "KEY":
            if c in NEWLINE:
                state, key = "PRE_KEY", ""
            elif c == "=":
                state, value = "PRE_VALUE", ""
            else:
                key += c
        elif state == "PRE_VALUE":
            if c in NEWLINE:
                push()
                state, key, value = "PRE_KEY", "", None
            elif c == "'":
                state = "SQ"
            elif c == '"':
                state = "DQ"
            elif c == "\\":
                state = "VALUE_ESCAPE"
            elif c not in WHITESPACE:
                state, value = "VALUE", value + c
        elif state == "VALUE":
            if c in NEWLINE:
                value = value.rstrip(WHITESPACE)
                push()
                state, key, value = "PRE_KEY", "", None
            elif c == "\\":
                state = "VALUE_ESCAPE"
            else:
                value += c
        elif state == "VALUE_ESCAPE":
            state = "VALUE"
            if c not in NEWLINE:
                value += c
        elif state == "SQ":
            if c == "'":
                state = "PRE_VALUE"
            else:
                value += c
        elif state == "DQ":
            if c == '"':
                state = "PRE_VALUE"
            elif c == "\\":
                state = "DQ_ESCAPE"
            else:
                value += c
        elif state == "DQ_ESCAPE":
            state = "DQ"
            if c in ESC:
                value += c
            elif c != "\n":
                value += "\\" + c
        elif state == "COMMENT":
            if c == "\\":
                state = "COMMENT_ESCAPE"
            elif c in NEWLINE:
                state = "PRE_KEY"
        elif state == "COMMENT_ESCAPE":
            state = "PRE_KEY" if c in NEWLINE else "COMMENT"
    if state in ("PRE_VALUE", "VALUE", "VALUE_ESCAPE", "SQ", "DQ", "DQ_ESCAPE"):
        if state == "VALUE":
            value = value.rstrip(WHITESPACE)
        push()
    return out


def main():
    fmt, path = sys.argv[1], sys.argv[2]
    if fmt == "dotenv":
        import dotenv

        result = dict(dotenv.dotenv_values(path))
    elif fmt == "json":
        with open(path, encoding="utf-8") as f:
            result = json.load(f)
    elif fmt == "sls":
        import yaml

        with open(path, encoding="utf-8") as f:
            result = yaml.safe_load(f)["secrets"]
    elif fmt == "supervisor":
        result = supervisor(path)
    elif fmt == "systemd":
        result = systemd(path)
    else:
        raise SystemExit("unknown format " + fmt)
    json.dump(result, sys.stdout, ensure_ascii=True)


if __name__ == "__main__":
    main()
