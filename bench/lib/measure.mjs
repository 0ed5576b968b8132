// Measurement helpers for the benchmark: statistics, CPU accounting per process group (cgroup v2,
// the v2 hierarchy of a hybrid setup, cgroup v1 cpuacct, or /proc sums as a last resort) and
// memory of a set of processes (Rss and Pss from /proc/<pid>/smaps_rollup).
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function median(xs) {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function percentile(xs, p) {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[i];
}

export const min = (xs) => Math.min(...xs);
export const max = (xs) => Math.max(...xs);

/** Clock ticks per second for /proc/<pid>/stat times (USER_HZ; 100 on every Linux we run on). */
const CLK_TCK = 100;

function readInt(path) {
  return Number(readFileSync(path, 'utf8').trim());
}

function readProcStat(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // f[0] is field 3 (state): ppid is field 4, utime 14, stime 15, cutime 16, cstime 17.
    return { ppid: Number(f[1]), utime: Number(f[11]), stime: Number(f[12]), cutime: Number(f[13]), cstime: Number(f[14]) };
  } catch {
    return undefined;
  }
}

function allPids() {
  return readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number);
}

/** pid and all its live descendants. */
export function descendants(rootPid) {
  const children = new Map();
  for (const pid of allPids()) {
    const st = readProcStat(pid);
    if (!st) continue;
    if (!children.has(st.ppid)) children.set(st.ppid, []);
    children.get(st.ppid).push(pid);
  }
  const out = [];
  const queue = [rootPid];
  while (queue.length) {
    const p = queue.shift();
    if (!existsSync(`/proc/${p}`)) continue;
    out.push(p);
    queue.push(...(children.get(p) ?? []));
  }
  return out;
}

/** CPU seconds (user + system) used so far by `rootPid` and its live descendants. */
export function treeCpuSeconds(rootPid) {
  let ticks = 0;
  for (const pid of descendants(rootPid)) {
    const st = readProcStat(pid);
    if (st) ticks += st.utime + st.stime;
  }
  return ticks / CLK_TCK;
}

/**
 * A group of server processes whose CPU time we account for. `spawnPrefix(cmd, args)` returns a
 * command that first moves itself into the group and then execs the server, so that every process
 * the server forks later (sshd's per-connection processes) is counted from its first instruction.
 */
export class ProcGroup {
  constructor(name) {
    this.name = name;
    this.kind = 'proc';
    this.dirs = [];
    this.rootPid = undefined;
    const candidates = [];
    if (existsSync('/sys/fs/cgroup/cgroup.controllers')) candidates.push(['v2', '/sys/fs/cgroup']);
    if (existsSync('/sys/fs/cgroup/unified/cgroup.controllers')) candidates.push(['v2', '/sys/fs/cgroup/unified']);
    if (existsSync('/sys/fs/cgroup/cpuacct/cpuacct.usage')) candidates.push(['v1', '/sys/fs/cgroup/cpuacct']);
    for (const [kind, base] of candidates) {
      const dir = join(base, name);
      try {
        if (!existsSync(dir)) mkdirSync(dir);
        readFileSync(kind === 'v2' ? join(dir, 'cpu.stat') : join(dir, 'cpuacct.usage'), 'utf8');
      } catch {
        continue; // read-only cgroupfs, no permission, or no cpu accounting in that hierarchy
      }
      this.kind = kind;
      this.dir = dir;
      this.dirs.push(dir);
      break;
    }
  }

  get description() {
    if (this.kind === 'v2') return `cgroup v2 ${this.dir} (cpu.stat usage_usec)`;
    if (this.kind === 'v1') return `cgroup v1 ${this.dir} (cpuacct.usage)`;
    return '/proc utime+stime(+reaped children) of the server process tree';
  }

  /** [command, args] that joins the group, then execs cmd. */
  wrap(cmd, args) {
    if (this.kind === 'proc') return [cmd, args];
    const procs = join(this.dir, 'cgroup.procs');
    return ['/bin/sh', ['-c', `echo $$ > '${procs}' && exec "$@"`, 'sh', cmd, ...args]];
  }

  setRoot(pid) {
    this.rootPid = pid;
  }

  pids() {
    if (this.kind !== 'proc') {
      return readFileSync(join(this.dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
    }
    return this.rootPid ? descendants(this.rootPid) : [];
  }

  /** Cumulative CPU seconds (user + system) of the group. */
  cpuSeconds() {
    if (this.kind === 'v2') {
      const m = /usage_usec (\d+)/.exec(readFileSync(join(this.dir, 'cpu.stat'), 'utf8'));
      return Number(m[1]) / 1e6;
    }
    if (this.kind === 'v1') return readInt(join(this.dir, 'cpuacct.usage')) / 1e9;
    let ticks = 0;
    for (const pid of this.pids()) {
      const st = readProcStat(pid);
      if (st) ticks += st.utime + st.stime + st.cutime + st.cstime;
    }
    return ticks / CLK_TCK;
  }

  /** Sum of Rss and Pss (bytes) over the group's live processes, and how many there are. */
  memory() {
    return memoryOf(this.pids());
  }

  remove() {
    for (const d of this.dirs) {
      for (let i = 0; i < 20; i++) {
        try {
          rmdirSync(d);
          break;
        } catch (e) {
          if (e.code === 'ENOENT') break;
          // EBUSY while exiting tasks are still being reaped
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
        }
      }
    }
  }
}

/** Rss/Pss in bytes over pids (zombies and vanished pids count 0). */
export function memoryOf(pids) {
  let rss = 0;
  let pss = 0;
  let n = 0;
  for (const pid of pids) {
    let text;
    try {
      text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    } catch {
      continue;
    }
    const r = /^Rss:\s+(\d+) kB/m.exec(text);
    const p = /^Pss:\s+(\d+) kB/m.exec(text);
    if (!r) continue; // zombie
    rss += Number(r[1]) * 1024;
    pss += Number(p?.[1] ?? r[1]) * 1024;
    n++;
  }
  return { rss, pss, processes: n };
}

/** Samples a group's memory every `ms` until stop(); returns the peaks. */
export function memorySampler(group, ms = 100) {
  let peakRss = 0;
  let peakPss = 0;
  let peakProcs = 0;
  const sample = () => {
    const m = group.memory();
    peakRss = Math.max(peakRss, m.rss);
    peakPss = Math.max(peakPss, m.pss);
    peakProcs = Math.max(peakProcs, m.processes);
  };
  sample();
  const t = setInterval(sample, ms);
  return {
    stop() {
      clearInterval(t);
      sample();
      return { peakRss, peakPss, peakProcs };
    },
  };
}
