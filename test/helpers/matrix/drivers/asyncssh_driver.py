#!/usr/bin/python3
"""asyncssh 2.10 (Debian's python3-asyncssh) as a matrix driver (contract: matrix_driver.py).

RSA signature algorithms are forced with `signature_algs`; names are passed and listed as bytes.
"""
import asyncio
import logging
import os
import re
import sys

import asyncssh

from matrix_driver import DOWNLOADS, LOCAL, NON_UTF8, P, describe, emit, esc, local, parse_args, wait_go

AUTH = {
    'password': {'preferred_auth': 'password'},
    'keyboard-interactive': {'preferred_auth': 'keyboard-interactive'},
    'wrongkey-then-password': {'preferred_auth': 'publickey,password'},
    'rsa-sha2-256': {'preferred_auth': 'publickey', 'signature_algs': ['rsa-sha2-256']},
    'rsa-sha2-512': {'preferred_auth': 'publickey', 'signature_algs': ['rsa-sha2-512']},
    'ed25519': {'preferred_auth': 'publickey'},
    'ecdsa': {'preferred_auth': 'publickey'},
}


class Log(logging.Handler):
    """Keeps asyncssh's log messages, to report which methods it tried."""
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


LOG = Log()
logging.getLogger('asyncssh').addHandler(LOG)
logging.getLogger('asyncssh').setLevel(logging.DEBUG)
logging.getLogger('asyncssh').propagate = False


async def login(args):
    conn = await asyncssh.connect(
        args.host, args.port, username=args.user, password=args.password, known_hosts=args.known_hosts,
        client_keys=[args.key] if args.key else [], agent_path=None, connect_timeout=10, **AUTH[args.auth])
    tried = [m for m in (re.search(r'Trying (public key|password|keyboard-interactive) auth(?: with (\S+) key)?', l) for l in LOG.lines) if m]
    value = {'method': tried[-1].group(1).replace('public key', 'publickey') if tried else None,
             'tried': [m.group(0) for m in tried]}
    if args.auth == 'wrongkey-then-password':
        value['keyRejected'] = [m.group(1) for m in tried] == ['public key', 'password']
    if tried and tried[-1].group(2):
        value['algorithm'] = tried[-1].group(2)
    return conn, value


async def listdir_bytes(sftp, path):
    return sorted(esc(n) for n in await sftp.listdir(path) if n not in (b'.', b'..'))


async def op(sftp, args, name):
    if name == 'realpath-dotdot':
        return [await sftp.realpath('/..'), await sftp.realpath('..')]
    if name == 'list':
        return sorted(n for n in await sftp.listdir('/w') if n not in ('.', '..'))
    if name == 'mkdir':
        return await sftp.mkdir(P['dir'])
    if name == 'upload-5m':
        return await sftp.put(local(args, LOCAL['up5m']), P['up5m'])
    if name in DOWNLOADS:
        remote, dest = DOWNLOADS[name]
        await sftp.get(P[remote], local(args, LOCAL[dest]))
        return os.path.getsize(local(args, LOCAL[dest]))
    if name == 'rename':
        return await sftp.rename(P['up5m'], P['renamed'])
    if name == 'stat':
        return (await sftp.stat(P['renamed'])).size
    if name == 'chmod':
        return await sftp.chmod(P['renamed'], 0o640)
    if name == 'symlink-readlink':
        await sftp.symlink(P['link_target'], P['link'])
        return await sftp.readlink(P['link'])
    if name == 'remove':
        await sftp.remove(P['link'])
        return await sftp.remove(P['renamed'])
    if name == 'rmdir':
        return await sftp.rmdir(P['dir'])
    if name == 'non-utf8-put':
        for src, dst in zip(LOCAL['non_utf8'], NON_UTF8):
            await sftp.put(local(args, src).encode(), dst)
        return await listdir_bytes(sftp, b'/w')
    if name == 'non-utf8-get':
        await sftp.get(NON_UTF8[0], local(args, LOCAL['non_utf8_back']).encode())
        for n in NON_UTF8:
            await sftp.remove(n)
        return os.path.getsize(local(args, LOCAL['non_utf8_back']))
    raise ValueError('unknown op ' + name)


async def main():
    args = parse_args()
    loop = asyncio.get_running_loop()
    try:
        conn, value = await login(args)
        sftp = await conn.start_sftp_client()
        value['root'] = sorted(n for n in await sftp.listdir('/') if n not in ('.', '..'))
        emit(args.auth, True, value)
    except Exception as e:
        emit(args.auth, False, error=describe(e))
        sys.exit(1)
    for name in args.ops:
        if not await loop.run_in_executor(None, wait_go):
            break
        try:
            emit(name, True, await op(sftp, args, name))
        except Exception as e:
            emit(name, False, error=describe(e))
    conn.close()
    await conn.wait_closed()


if __name__ == '__main__':
    asyncio.run(main())
