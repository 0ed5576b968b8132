import { describe, it, expect } from 'vitest';
import { Pacing } from '../../../src/sftp/pacing.js';
import { MAX_PACKET } from '../../../src/sftp/read-buffers.js';

function paced(resumeThrows = false) {
  const input = {
    paused: 0,
    resumed: 0,
    queued: 0,
    pauseInput: () => void input.paused++,
    resumeInput: () => {
      input.resumed++;
      if (resumeThrows) throw new Error('listener threw');
    },
    outgoingBytes: () => input.queued,
  };
  const dropped: string[] = [];
  const state = { closed: false };
  const p = new Pacing(input as never, { maxRequestsInFlight: 4, maxInflightBytes: 1000 }, state, (why) => dropped.push(why));
  return { p, input, dropped, state };
}

describe('Pacing', () => {
  it('input pauses once at maxRequestsInFlight and resumes only when half of them are done', () => {
    const { p, input } = paced();
    for (let n = 1; n <= 5; n++) p.started(n);
    expect(input.paused).toBe(1);
    p.resume(3);
    expect(input.resumed).toBe(0);
    p.resume(2);
    expect(input.resumed).toBe(1);
  });

  it('replies piling up unread beyond the READ budget pause input, and it stays paused until they drain', () => {
    const { p, input } = paced();
    input.queued = 1000 + MAX_PACKET + 1;
    p.started(1);
    expect(input.paused).toBe(1);
    p.resume(0);
    expect(input.resumed).toBe(0);
    input.queued = 0;
    p.resume(0);
    expect(input.resumed).toBe(1);
  });

  it('a listener that throws while the waiting requests are parsed ends the connection', () => {
    const { p, dropped } = paced(true);
    p.started(4);
    p.resume(0);
    expect(dropped).toEqual(['error parsing queued requests: listener threw']);
  });

  it('a closed session does not resume input', () => {
    const { p, input, state } = paced();
    p.started(4);
    state.closed = true;
    p.resume(0);
    expect(input.resumed).toBe(0);
  });
});
