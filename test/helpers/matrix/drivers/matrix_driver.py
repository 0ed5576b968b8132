"""The scripted drivers' shared contract (see test/helpers/matrix/driver.ts), for the Python ones.

    driver --host H --port P --user U --password X --known-hosts F --auth CELL [--key PATH]
           --ops a,b,c --local DIR

Logs in as CELL says, lists `/` and prints one JSON line for CELL; then for each op waits for a line
on stdin, performs the op and prints one JSON line: {"cell", "ok", "value", "error"}.
"""
import argparse
import json
import os
import sys

# The same paths as test/helpers/matrix/cells.ts.
P = {
    'hello': '/w/hello.txt', 'dl5m': '/w/dl5m.bin', 'dl20m': '/w/dl20m.bin', 'dl100m': '/w/dl100m.bin',
    'dir': '/w/m', 'up5m': '/w/m/up5m.bin', 'renamed': '/w/m/renamed.bin', 'link': '/w/m/link',
    'link_target': 'renamed.bin',
}
NON_UTF8 = [b'/w/up-\xbf.txt', b'/w/up-\xfe.txt']
LOCAL = {'up5m': 'up5m.bin', 'non_utf8': ['nonutf8-1.bin', 'nonutf8-2.bin'], 'dl5m': 'dl5m.bin',
         'dl20m': 'dl20m.bin', 'dl100m': 'dl100m.bin', 'non_utf8_back': 'nonutf8-back.bin'}
DOWNLOADS = {'download-5m': ('dl5m', 'dl5m'), 'download-20m': ('dl20m', 'dl20m'), 'download-100m': ('dl100m', 'dl100m')}


def parse_args():
    p = argparse.ArgumentParser()
    for name in ('host', 'user', 'password', 'known-hosts', 'auth', 'local'):
        p.add_argument('--' + name, required=True)
    p.add_argument('--port', type=int, required=True)
    p.add_argument('--key')
    p.add_argument('--ops', default='')
    # "--opt value" pairs joined as "--opt=value": a value may start with "-" (the test double's
    # random passwords do), which argparse would take for an option.
    argv = sys.argv[1:]
    joined = [f'{argv[i]}={argv[i + 1]}' for i in range(0, len(argv) - 1, 2)]
    a = p.parse_args(joined)
    a.ops = [o for o in a.ops.split(',') if o]
    return a


def local(args, name):
    return os.path.join(args.local, name)


def esc(name):
    """A name as bytes, printed: printable ASCII as is, any other byte (and backslash) as \\xNN."""
    if isinstance(name, str):
        name = name.encode('utf-8', 'surrogateescape')
    return ''.join(chr(b) if 0x20 <= b < 0x7f and b != 0x5c else '\\x%02x' % b for b in name)


def emit(cell, ok, value=None, error=None):
    line = {'cell': cell, 'ok': ok, 'value': value}
    if error is not None:
        line['error'] = error
    sys.stdout.write(json.dumps(line) + '\n')
    sys.stdout.flush()


def describe(e):
    return '%s: %s' % (type(e).__name__, e)


def wait_go():
    """Blocks until the harness says go; False at end of input."""
    return sys.stdin.readline() != ''
