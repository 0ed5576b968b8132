import { test, expect } from 'vitest';
import SftpClient from 'ssh2-sftp-client';
import { startTestServer } from 'sftp-chroot/testing';

test('downloads the fixture and uploads a report', async () => {
  await using s = await startTestServer({ files: { 'in/a.csv': 'x,y\n' } });
  const sftp = new SftpClient();
  await sftp.connect(s.connectOptions);
  expect(String(await sftp.get('/in/a.csv'))).toBe('x,y\n');
  await sftp.put(Buffer.from('1,2\n'), '/in/b.csv');
  await sftp.end();

  expect(String(await s.readFile('/in/b.csv'))).toBe('1,2\n');
  expect(await s.events.waitFor('transfer')).toMatchObject({ path: '/in/a.csv', direction: 'download', status: 'complete' });
  expect(await s.events.waitFor((e) => e.event === 'transfer' && e.direction === 'upload')).toMatchObject({ path: '/in/b.csv', bytesWritten: 4 });
});
