#!/usr/bin/env python3
"""Print the JSON encoding/json writes for a zero-valued dto.Mock of Mockarty's Go SDK.

Usage: go_dto_zero.py <go-sdk git dir> [type, default Mock] [rev, default HEAD]

Reads dto/*.go at <rev> with `git show` (the dir may be bare) and applies encoding/json's rules:
a struct value is always written (omitempty never omits structs); nil pointers/slices/maps/
interfaces and zero scalars are omitted with omitempty, else written as null / "" / 0 / false.
stdout is exactly that JSON; the SDK commit it came from is printed on stderr.
"""
import json
import re
import subprocess
import sys

TYPE_RE = re.compile(r'^type\s+(\w+)\s+(=\s*)?(.+?)\s*$')
FIELD_RE = re.compile(r'^(\w+)\s+(\S+)\s*(?:`(.*)`)?')
SCALARS = {'string': '', 'bool': False}
NUMERIC = re.compile(r'^(u?int(8|16|32|64)?|float(32|64)|byte|rune|uintptr)$')


def git(gitdir, *args):
    return subprocess.run(['git', '-C', gitdir] + list(args), check=True, capture_output=True,
                          text=True).stdout


def parse(sources):
    """Map type name -> ('struct', [(go name, type, tag)]) or ('named', underlying type)."""
    types = {}
    for src in sources:
        lines = iter(src.splitlines())
        for line in lines:
            m = TYPE_RE.match(line)
            if not m:
                continue
            name, _, rhs = m.groups()
            if rhs != 'struct {':
                types[name] = ('named', rhs)
                continue
            fields = []
            for fl in lines:
                fl = fl.strip()
                if fl == '}':
                    break
                if not fl or fl.startswith('//'):
                    continue
                fm = FIELD_RE.match(fl)
                if not fm:
                    raise SystemExit('unparsed field in %s: %r' % (name, fl))
                fields.append(fm.groups())
            types[name] = ('struct', fields)
    return types


def json_tag(gname, tag):
    m = re.search(r'json:"([^"]*)"', tag or '')
    if not m:
        return gname, False
    parts = m.group(1).split(',')
    return (parts[0] or gname), 'omitempty' in parts[1:]


def zero(types, typ):
    """(is_empty_for_omitempty, json value) of the zero value of typ."""
    if typ.startswith(('*', '[]', 'map[')) or typ in ('any', 'interface{}'):
        return True, None
    if typ in SCALARS:
        return True, SCALARS[typ]
    if NUMERIC.match(typ):
        return True, 0
    if typ.startswith('['):  # fixed array: only [0]T is "empty"; none in the dto package
        raise SystemExit('array type not supported: ' + typ)
    kind, body = types[typ]
    if kind == 'named':
        return zero(types, body)
    obj = {}
    for gname, ftyp, tag in body:
        if not gname[0].isupper():
            continue
        key, omitempty = json_tag(gname, tag)
        if key == '-':
            continue
        empty, val = zero(types, ftyp)
        if not (omitempty and empty):
            obj[key] = val
    return False, obj


def main():
    gitdir = sys.argv[1]
    root = sys.argv[2] if len(sys.argv) > 2 else 'Mock'
    rev = sys.argv[3] if len(sys.argv) > 3 else 'HEAD'
    files = [f for f in git(gitdir, 'ls-tree', '--name-only', rev, 'dto/').split()
             if f.endswith('.go') and not f.endswith('_test.go')]
    types = parse(git(gitdir, 'show', '%s:%s' % (rev, f)) for f in files)
    commit = git(gitdir, 'rev-parse', rev).strip()
    print('go-sdk commit %s, type dto.%s' % (commit, root), file=sys.stderr)
    print(json.dumps(zero(types, root)[1], indent=2, sort_keys=False))


if __name__ == '__main__':
    main()
