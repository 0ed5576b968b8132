"""sftp-chroot's test double as a pytest fixture: one server process per test (function scope).

Each test that asks for `sftp_server` (or calls `start_sftp_server`) gets its own server, root and
keys, so tests never see each other's files or audit records; a start costs a Node process (a few
hundred ms). For a module- or session-wide server, copy the fixture and change its scope.

The command is $SFTP_CHROOT_CLI if set (e.g. "npx sftp-chroot" in your project), else this
checkout's dist/cli.js run by node (npm run build first).
"""
import json
import os
import queue
import shlex
import subprocess
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

CHECKOUT_CLI = Path(__file__).resolve().parents[2] / 'dist' / 'cli.js'


def cli_command():
    cli = os.environ.get('SFTP_CHROOT_CLI')
    return shlex.split(cli) if cli else ['node', str(CHECKOUT_CLI)]


class TestServer(SimpleNamespace):
    """The JSON line's fields (host, port, user, password, privateKeyPath, knownHostsPath, root, url,
    ...) as attributes, plus the audit records streamed since (`events`) and `wait_for`."""

    __test__ = False  # not a test class, whatever pytest thinks of its name

    def __init__(self, proc, info):
        super().__init__(**info)
        self.proc = proc
        self.events = []
        self._cond = threading.Condition()

    def _add(self, record):
        with self._cond:
            self.events.append(record)
            self._cond.notify_all()

    def wait_for(self, event, where=lambda r: True, timeout=5.0):
        """The first audit record of type `event` matching `where`, even one that already arrived."""
        def find():
            return next((r for r in self.events if r.get('event') == event and where(r)), None)
        with self._cond:
            if self._cond.wait_for(find, timeout) is None:
                seen = ', '.join(r.get('event', '?') for r in self.events) or 'none'
                raise AssertionError('no matching %r record within %ss (saw: %s)' % (event, timeout, seen))
            return find()


def _start(*args):
    # stderr is inherited: pytest shows it (usage errors, a busy port) with the failing test.
    proc = subprocess.Popen(cli_command() + ['test-server', '--json', *args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    first = queue.Queue()

    def read():  # stdout must be read all the time: a full pipe would stall the server
        server = None
        for line in proc.stdout:
            record = json.loads(line)
            if server is None:
                server = TestServer(proc, record)
                first.put(server)
            else:
                server._add(record)
        if server is None:
            first.put(None)

    threading.Thread(target=read, daemon=True).start()
    try:
        server = first.get(timeout=30)
    except queue.Empty:
        server = None
    if server is None:
        proc.kill()
        proc.wait()
        raise RuntimeError('sftp-chroot test-server did not start (exit code %s)' % proc.returncode)
    return server


def _stop(server):
    server.proc.stdin.close()  # EOF: the server stops and removes its root and key files
    assert server.proc.wait(timeout=30) == 0


@pytest.fixture
def start_sftp_server():
    """A factory: start_sftp_server(files=DIR, user=NAME, password=P) -> TestServer; each one
    started is stopped when the test ends."""
    started = []

    def start(files=None, user=None, password=None):
        args = []
        for flag, value in (('--files', files), ('--user', user), ('--password', password)):
            if value is not None:
                args += [flag, str(value)]
        server = _start(*args)
        started.append(server)
        return server

    yield start
    for server in started:
        _stop(server)


@pytest.fixture
def sftp_server(start_sftp_server):
    """A server with an empty root, for this test only."""
    return start_sftp_server()
