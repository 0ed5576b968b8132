"""Uploads and downloads with paramiko against sftp-chroot's test double, then checks the root and
the audit records the server streamed."""
import io
import os

import paramiko


def connect(server):
    client = paramiko.SSHClient()
    client.load_host_keys(server.knownHostsPath)  # only this server's host keys are accepted
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(server.host, server.port, username=server.user, key_filename=server.privateKeyPath,
                   look_for_keys=False, allow_agent=False)
    return client


def test_downloads_the_fixture_and_uploads_a_report(start_sftp_server, tmp_path):
    (tmp_path / 'in').mkdir()
    (tmp_path / 'in' / 'a.csv').write_text('x,y\n')
    server = start_sftp_server(files=tmp_path)

    client = connect(server)
    try:
        sftp = client.open_sftp()
        with sftp.open('/in/a.csv') as f:
            assert f.read() == b'x,y\n'
        sftp.putfo(io.BytesIO(b'1,2\n'), '/in/b.csv')
        sftp.close()
    finally:
        client.close()

    with open(os.path.join(server.root, 'in', 'b.csv'), 'rb') as f:
        assert f.read() == b'1,2\n'
    upload = server.wait_for('transfer', lambda r: r['direction'] == 'upload')
    assert (upload['path'], upload['bytesWritten'], upload['status']) == ('/in/b.csv', 4, 'complete')
    download = server.wait_for('transfer', lambda r: r['direction'] == 'download')
    assert (download['path'], download['status']) == ('/in/a.csv', 'complete')


def test_logs_in_with_the_password_too(sftp_server):
    client = paramiko.SSHClient()
    client.load_host_keys(sftp_server.knownHostsPath)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(sftp_server.host, sftp_server.port, username=sftp_server.user, password=sftp_server.password,
                   look_for_keys=False, allow_agent=False)
    client.close()
    assert sftp_server.wait_for('auth.success')['method'] == 'password'
