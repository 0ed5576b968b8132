#!/usr/bin/python3
"""paramiko (Transport, SFTPClient; SSHClient for one cell) as a matrix driver (matrix_driver.py).

Extra auth cell: `sshclient-wrongkey-then-password`, SSHClient.connect(password=…) with a key it
discovers in $HOME/.ssh (the harness points HOME at a directory holding the unknown key).
"""
import logging
import os
import socket
import sys

import paramiko
from paramiko.sftp import CMD_CLOSE, CMD_NAME, CMD_OPENDIR, CMD_READDIR

from matrix_driver import DOWNLOADS, LOCAL, NON_UTF8, P, describe, emit, esc, local, parse_args, wait_go

RSA_ALGS = ('rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa')


class Log(logging.Handler):
    """Keeps paramiko's debug messages, to report what it offered."""
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


LOG = Log()
logging.getLogger('paramiko').addHandler(LOG)
logging.getLogger('paramiko').setLevel(logging.DEBUG)


def load_key(path):
    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return cls.from_private_key_file(path)
        except paramiko.SSHException:
            continue
    raise ValueError('unreadable key ' + path)


def check_host_key(t, args):
    key = t.get_remote_server_key()
    known = paramiko.HostKeys(args.known_hosts).lookup('[%s]:%d' % (args.host, args.port)) or {}
    if known.get(key.get_name()) != key:
        raise paramiko.SSHException('host key %s not in %s' % (key.get_name(), args.known_hosts))


def transport(args):
    disabled = {}
    if args.auth.startswith('rsa-sha2-'):
        disabled = {'pubkeys': [a for a in RSA_ALGS if a != args.auth]}
    t = paramiko.Transport(socket.create_connection((args.host, args.port), 10), disabled_algorithms=disabled)
    t.start_client(timeout=10)
    check_host_key(t, args)
    return t


def login(args):
    """Returns (transport, value describing the login)."""
    if args.auth == 'sshclient-wrongkey-then-password':
        c = paramiko.SSHClient()
        c.load_host_keys(args.known_hosts)
        c.set_missing_host_key_policy(paramiko.RejectPolicy())
        c.connect(args.host, args.port, args.user, password=args.password, allow_agent=False, look_for_keys=True, timeout=10)
        t = c.get_transport()
        tried = [l for l in LOG.lines if l.startswith('Trying discovered key')]
        if not tried:
            raise RuntimeError('SSHClient offered no key from %s/.ssh' % os.environ.get('HOME'))
        return t, {'offered': tried, 'keyRejected': True, 'method': t.auth_handler.auth_method}
    t = transport(args)
    if args.auth == 'password':
        t.auth_password(args.user, args.password)
    elif args.auth == 'keyboard-interactive':
        prompts = []
        def answer(title, instructions, asked):
            prompts.extend(p for p, _ in asked)
            return [args.password for _ in asked]
        t.auth_interactive(args.user, answer)
        return t, {'method': 'keyboard-interactive', 'prompts': prompts}
    elif args.auth == 'wrongkey-then-password':
        try:
            t.auth_publickey(args.user, load_key(args.key))
            raise RuntimeError('the unknown key was accepted')
        except paramiko.AuthenticationException:
            pass
        t.auth_password(args.user, args.password)
        return t, {'method': 'password', 'keyRejected': True}
    else:
        t.auth_publickey(args.user, load_key(args.key))
    algs = [l for l in LOG.lines if l.startswith('Agreed upon')]
    return t, {'method': t.auth_handler.auth_method, **({'algorithm': algs[-1]} if algs else {})}


def listdir_bytes(sftp, path):
    """READDIR with names kept as bytes (SFTPClient.listdir decodes them as UTF-8)."""
    _, msg = sftp._request(CMD_OPENDIR, path)
    handle = msg.get_binary()
    names = []
    try:
        while True:
            try:
                kind, msg = sftp._request(CMD_READDIR, handle)
            except EOFError:
                return names
            if kind != CMD_NAME:
                raise paramiko.SFTPError('READDIR answered %d' % kind)
            for _ in range(msg.get_int()):
                names.append(msg.get_string())
                msg.get_string()
                paramiko.SFTPAttributes._from_msg(msg)
    finally:
        sftp._request(CMD_CLOSE, handle)


def op(sftp, args, name):
    if name == 'realpath-dotdot':
        return [sftp.normalize('/..'), sftp.normalize('..')]
    if name == 'list':
        return sorted(sftp.listdir(P['dir'].rsplit('/', 1)[0]))
    if name == 'mkdir':
        return sftp.mkdir(P['dir'])
    if name == 'upload-5m':
        return sftp.put(local(args, LOCAL['up5m']), P['up5m']).st_size
    if name in DOWNLOADS:
        remote, dest = DOWNLOADS[name]
        sftp.get(P[remote], local(args, LOCAL[dest]))
        return os.path.getsize(local(args, LOCAL[dest]))
    if name == 'rename':
        return sftp.rename(P['up5m'], P['renamed'])
    if name == 'stat':
        return sftp.stat(P['renamed']).st_size
    if name == 'chmod':
        return sftp.chmod(P['renamed'], 0o640)
    if name == 'symlink-readlink':
        sftp.symlink(P['link_target'], P['link'])
        return sftp.readlink(P['link'])
    if name == 'remove':
        sftp.remove(P['link'])
        return sftp.remove(P['renamed'])
    if name == 'rmdir':
        return sftp.rmdir(P['dir'])
    if name == 'non-utf8-put':
        for src, dst in zip(LOCAL['non_utf8'], NON_UTF8):
            sftp.put(local(args, src), dst)
        return sorted(esc(n) for n in listdir_bytes(sftp, b'/w'))
    if name == 'non-utf8-get':
        sftp.get(NON_UTF8[0], local(args, LOCAL['non_utf8_back']))
        for n in NON_UTF8:
            sftp.remove(n)
        return os.path.getsize(local(args, LOCAL['non_utf8_back']))
    raise ValueError('unknown op ' + name)


def main():
    args = parse_args()
    try:
        t, value = login(args)
        sftp = paramiko.SFTPClient.from_transport(t)
        value['root'] = sorted(sftp.listdir('/'))
        emit(args.auth, True, value)
    except Exception as e:
        emit(args.auth, False, error=describe(e))
        sys.exit(1)
    for name in args.ops:
        if not wait_go():
            break
        try:
            emit(name, True, op(sftp, args, name))
        except Exception as e:
            emit(name, False, error=describe(e))
    t.close()


if __name__ == '__main__':
    main()
