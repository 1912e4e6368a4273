#!/usr/bin/env python3
"""Checks a Prometheus text exposition on stdin: every sample line is
`name{labels} value`, every family has HELP and TYPE before its samples,
families are not split, and each FAMILY named on the command line is there.
Prints what is wrong and exits 1, or exits 0."""
import re
import sys

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(r"^(%s)(\{(%s(,%s)*)?\})? (\S+)$" % (NAME, LABEL, LABEL))
META = re.compile(r"^# (HELP|TYPE) (%s) (.*)$" % NAME)
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}
SUFFIXES = ("_bucket", "_sum", "_count")


def family_of(name, types):
    if name in types:
        return name
    for s in SUFFIXES:
        if name.endswith(s) and types.get(name[: -len(s)]) in ("histogram", "summary"):
            return name[: -len(s)]
    return None


def main():
    errors, helps, types, done, current = [], set(), {}, set(), None
    for n, line in enumerate(sys.stdin.read().splitlines(), 1):
        if not line:
            continue
        m = META.match(line)
        if m:
            kind, name, rest = m.groups()
            if kind == "HELP":
                helps.add(name)
            elif rest not in TYPES:
                errors.append("line %d: bad type %r" % (n, rest))
            else:
                types[name] = rest
            continue
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            errors.append("line %d: not a sample: %r" % (n, line))
            continue
        try:
            float(m.group(5))
        except ValueError:
            errors.append("line %d: bad value %r" % (n, m.group(5)))
        fam = family_of(m.group(1), types)
        if fam is None or fam not in helps:
            errors.append("line %d: %s has no HELP/TYPE before it" % (n, m.group(1)))
            continue
        if fam != current:
            if fam in done:
                errors.append("line %d: family %s is split" % (n, fam))
            if current:
                done.add(current)
            current = fam
    for fam in sys.argv[1:]:
        if fam not in types or fam not in helps:
            errors.append("family %s missing" % fam)
    for e in errors[:20]:
        print(e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
