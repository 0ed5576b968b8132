import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { promisify } from 'node:util';
import ssh2 from 'ssh2';
import { startTestServer } from 'sftp-chroot/testing';

test('downloads the fixture and uploads a report', async () => {
  const s = await startTestServer({ files: { 'in/a.csv': 'x,y\n' } });
  const conn = new ssh2.Client();
  try {
    conn.connect(s.connectOptions);
    await once(conn, 'ready');
    const sftp = await promisify(conn.sftp.bind(conn))();
    assert.equal(String(await promisify(sftp.readFile.bind(sftp))('/in/a.csv')), 'x,y\n');
    await promisify(sftp.writeFile.bind(sftp))('/in/b.csv', '1,2\n');

    assert.equal(String(await s.readFile('/in/b.csv')), '1,2\n');
    const download = await s.events.waitFor('transfer');
    assert.deepEqual([download.path, download.direction, download.status], ['/in/a.csv', 'download', 'complete']);
    const upload = await s.events.waitFor((e) => e.event === 'transfer' && e.direction === 'upload');
    assert.deepEqual([upload.path, upload.bytesWritten], ['/in/b.csv', 4]);
  } finally {
    conn.end();
    await s.close();
  }
});
