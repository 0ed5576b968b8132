import assert from 'node:assert/strict';
import SftpClient from 'ssh2-sftp-client';
import { startTestServer } from 'sftp-chroot/testing';

describe('sftp-chroot test double', () => {
  let s;
  beforeEach(async () => (s = await startTestServer({ files: { 'in/a.csv': 'x,y\n' } })));
  afterEach(() => s.close());

  it('downloads the fixture and uploads a report', async () => {
    const sftp = new SftpClient();
    await sftp.connect(s.connectOptions);
    assert.equal(String(await sftp.get('/in/a.csv')), 'x,y\n');
    await sftp.put(Buffer.from('1,2\n'), '/in/b.csv');
    await sftp.end();

    assert.equal(String(await s.readFile('/in/b.csv')), '1,2\n');
    const download = await s.events.waitFor('transfer');
    assert.deepEqual([download.path, download.direction, download.status], ['/in/a.csv', 'download', 'complete']);
    const upload = await s.events.waitFor((e) => e.event === 'transfer' && e.direction === 'upload');
    assert.deepEqual([upload.path, upload.bytesWritten], ['/in/b.csv', 4]);
  });
});
