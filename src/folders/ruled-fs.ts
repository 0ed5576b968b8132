/**
 * Per-folder rules enforced at the FileSystem seam, so every request that reaches files passes here.
 * Each path is first resolved with a plain jail (symlinks followed inside the root, as in a chroot),
 * the rule of the resolved path is checked, and the operation then runs on that resolved path
 * through a strict jail that refuses any symlink: one swapped in after the check fails (ELOOP)
 * instead of redirecting the operation. Rules are by path, so whatever sits at a resolved path is
 * governed by that path's rule; renames and hard links, which change what sits where, may not carry
 * content to a path whose rule grants more (CONTENT_PERMISSIONS), nor move a ruled folder, and a
 * hard link joins only paths whose rules grant the same of these.
 *
 * The rules are read at each request (a reload changes them for running sessions too); a user with
 * none takes the fast way: the plain jail's own call, no extra resolve, no extra promise.
 *
 * Which path a request is checked on: reading, writing, listing and changing attributes need the
 * permission on the thing itself; creating, removing and renaming a name need it in the folder that
 * holds the name (as a Unix directory's write bit). stat, lstat, readlink, realpath and statvfs
 * need none (names can be probed, as in a directory with --x).
 */
import { posix } from 'node:path';
import type { DirReader, FileSystem, OpenFile, OpenFlags, SetAttrs } from '../fs/file-system.js';
import { ForwardingFileSystem } from '../fs/forwarding.js';
import { RuledFile } from './ruled-file.js';
import { writesFile } from '../fs/file-system.js';
import { SftpStatusError } from '../errors.js';
import { CONTENT_PERMISSIONS, type FolderRules, type Permission } from './rules.js';
import { STAGING_PREFIX } from '../fs/staging-name.js';

const isStaging = (path: string) => posix.basename(path).startsWith(STAGING_PREFIX);

/** The rules of one request: what to refuse, with the reason the log gets. */
class Check {
  constructor(readonly rules: FolderRules) {}

  allows(path: string, p: Permission): boolean {
    return this.rules.allows(path, p);
  }

  need(p: Permission, path: string): void {
    if (this.rules.allows(path, p)) return;
    const rule = this.rules.ruleFor(path);
    throw new SftpStatusError('PERMISSION_DENIED', undefined, `"${p}" is not allowed in ${path} (folders rule "${rule?.prefix ?? '/'}")`);
  }

  /** Content moved or linked from `from` to `to` must not gain a permission there. */
  noGain(from: string, to: string, what: string): void {
    for (const p of CONTENT_PERMISSIONS)
      if (this.rules.allows(to, p) && !this.rules.allows(from, p))
        throw new SftpStatusError('PERMISSION_DENIED', undefined, `${what} from ${from} to ${to} would allow "${p}" (folders rules "${this.rules.ruleFor(from)?.prefix ?? '/'}", "${this.rules.ruleFor(to)?.prefix ?? '/'}")`);
  }

  /**
   * SETSTAT's needs: a size needs "overwrite" (a handle open for writing has it already); times need
   * "chmod", or the right to put the file there ("upload" in its folder, or "overwrite"): clients set
   * them right after an upload (rclone, WinSCP, `put -p`); mode and owner need "chmod".
   */
  attrs(path: string, attrs: SetAttrs, writable = false): void {
    if (attrs.size !== undefined && !writable) this.need('overwrite', path);
    if (attrs.mode !== undefined || attrs.uid !== undefined || attrs.gid !== undefined) this.need('chmod', path);
    if (attrs.atime !== undefined || attrs.mtime !== undefined) {
      if (!this.allows(path, 'chmod') && !this.allows(path, 'overwrite') && !this.allows(posix.dirname(path), 'upload')) this.need('chmod', path);
    }
  }
}

export class RuledFileSystem extends ForwardingFileSystem {
  /**
   * `resolver` follows symlinks (a plain jail on the root; what a user without rules gets, and what
   * stat, readlink, realpath and statvfs use); `strict()` is a jail on the same root that refuses
   * them (new Jail(root, { noSymlinks: true })), opened when first needed; `rules()` the user's
   * rules now (undefined: none).
   */
  constructor(
    resolver: FileSystem,
    readonly strict: () => FileSystem,
    readonly rules: () => FolderRules | undefined,
  ) {
    super(resolver);
  }

  /** Without rules now, the plain call; with them, `ruled`. */
  #either<T>(plain: () => Promise<T>, ruled: (k: Check) => Promise<T>): Promise<T> {
    const r = this.rules();
    return r ? ruled(new Check(r)) : plain();
  }

  /** The resolved path of what `path` names, its last component followed. */
  #resolved(path: string): Promise<string> {
    return this.inner.realpath(path);
  }

  /** The resolved path of the name `path` itself: its folder resolved, the last component kept. */
  async #entry(path: string): Promise<string> {
    if (path === '/') return '/';
    return posix.join(await this.inner.realpath(posix.dirname(path)), posix.basename(path));
  }

  /** Two names' #entry; one resolve when they share a folder (an atomic upload's publish). */
  async #entries(a: string, b: string): Promise<[string, string]> {
    if (a === '/' || b === '/' || posix.dirname(a) !== posix.dirname(b)) return [await this.#entry(a), await this.#entry(b)];
    const dir = await this.inner.realpath(posix.dirname(a));
    return [posix.join(dir, posix.basename(a)), posix.join(dir, posix.basename(b))];
  }

  /** A call on the name `path` (not followed) that needs `p` in the folder that holds it. */
  #named(path: string, p: Permission, plain: () => Promise<void>, act: (target: string) => Promise<void>): Promise<void> {
    return this.#either(plain, async (k) => {
      const target = await this.#entry(path);
      // A discarded atomic upload: the server's own hidden file, allowed when it was created.
      if (!(p === 'delete' && isStaging(path))) k.need(p, posix.dirname(target));
      return act(target);
    });
  }

  async #exists(path: string): Promise<boolean> {
    return this.strict().lstat(path).then(
      () => true,
      (e: unknown) => {
        if ((e as { code?: string }).code === 'ENOENT') return false;
        throw e;
      },
    );
  }

  /** A handle whose FSETSTAT is checked against the rules of the moment, as SETSTAT would be. */
  #file(file: OpenFile, target: string, writable: boolean): OpenFile {
    return new RuledFile(file, (attrs) => {
      const r = this.rules();
      if (r) new Check(r).attrs(target, attrs, writable);
    });
  }

  override open(path: string, flags: OpenFlags, mode: number, stagingPath?: string): Promise<OpenFile> {
    return this.#either(
      () => this.inner.open(path, flags, mode, stagingPath),
      (k) => this.#open(k, path, flags, mode, stagingPath),
    );
  }

  async #open(k: Check, path: string, flags: OpenFlags, mode: number, stagingPath?: string): Promise<OpenFile> {
    const target = await this.#resolved(path);
    if (flags.read) k.need('download', target);
    if (!writesFile(flags)) return this.#file(await this.strict().open(target, flags, mode), target, false);
    let f = flags;
    const [overwrite, upload] = [k.allows(target, 'overwrite'), k.allows(posix.dirname(target), 'upload')];
    // Both allowed: whether the name exists decides nothing, so it is not looked up.
    if (overwrite && upload) {
      /* as asked */
    } else if (await this.#exists(target)) {
      k.need('overwrite', target);
      // Removed meanwhile: without "upload" it must not be created instead.
      if (!upload) f = { ...f, creat: false };
    } else {
      if (f.creat) k.need('upload', posix.dirname(target));
      // Created meanwhile: without "overwrite" it must not be opened instead.
      if (!overwrite) f = { ...f, excl: true };
    }
    const staging = stagingPath === undefined ? undefined : posix.join(posix.dirname(target), posix.basename(stagingPath));
    return this.#file(await this.strict().open(target, f, mode, staging), target, true);
  }

  override opendir(path: string): Promise<DirReader> {
    return this.#either(
      () => this.inner.opendir(path),
      async (k) => {
        const dir = await this.#resolved(path);
        k.need('list', dir);
        return this.strict().opendir(dir);
      },
    );
  }

  override setstat(path: string, attrs: SetAttrs): Promise<void> {
    return this.#setAttrs(path, attrs, true);
  }

  override lsetstat(path: string, attrs: SetAttrs): Promise<void> {
    return this.#setAttrs(path, attrs, false);
  }

  /** SETSTAT (`follow`: the last component followed) or LSETSTAT, checked on the resolved path. */
  #setAttrs(path: string, attrs: SetAttrs, follow: boolean): Promise<void> {
    return this.#either(
      () => (follow ? this.inner.setstat(path, attrs) : this.inner.lsetstat(path, attrs)),
      async (k) => {
        const target = await (follow ? this.#resolved(path) : this.#entry(path));
        k.attrs(target, attrs);
        return follow ? this.strict().setstat(target, attrs) : this.strict().lsetstat(target, attrs);
      },
    );
  }

  override mkdir(path: string, mode: number): Promise<void> {
    return this.#named(path, 'mkdir', () => this.inner.mkdir(path, mode), (t) => this.strict().mkdir(t, mode));
  }

  override rmdir(path: string): Promise<void> {
    return this.#named(path, 'delete', () => this.inner.rmdir(path), (t) => this.strict().rmdir(t));
  }

  override remove(path: string): Promise<void> {
    return this.#named(path, 'delete', () => this.inner.remove(path), (t) => this.strict().remove(t));
  }

  override symlink(target: string, linkPath: string): Promise<void> {
    return this.#named(linkPath, 'symlink', () => this.inner.symlink(target, linkPath), (t) => this.strict().symlink(target, t));
  }

  override rename(from: string, to: string, overwrite: boolean): Promise<void> {
    return this.#either(
      () => this.inner.rename(from, to, overwrite),
      (k) => this.#rename(k, from, to, overwrite),
    );
  }

  async #rename(k: Check, from: string, to: string, overwrite: boolean): Promise<void> {
    const [src, dst] = await this.#entries(from, to);
    if (isStaging(from)) {
      // Publishing an atomic upload: "upload" or "overwrite" was checked at OPEN; a name that
      // appeared since is replaced only with "overwrite".
      return this.strict().rename(src, dst, overwrite && k.allows(dst, 'overwrite'));
    }
    k.need('rename', posix.dirname(src));
    k.need('rename', posix.dirname(dst));
    const ruled = k.rules.ruledAtOrBelow(src) ?? k.rules.ruledAtOrBelow(dst);
    if (ruled !== undefined) throw new SftpStatusError('PERMISSION_DENIED', undefined, `a rename from ${src} to ${dst} would move what folders rule "${ruled}" covers`);
    k.noGain(src, dst, 'a rename');
    // Replacing an existing name destroys its content: only with "overwrite" there.
    return this.strict().rename(src, dst, overwrite && k.allows(dst, 'overwrite'));
  }

  override link(existing: string, newPath: string): Promise<void> {
    return this.#either(
      () => this.inner.link(existing, newPath),
      async (k) => {
        const [src, dst] = await this.#entries(existing, newPath);
        k.need('upload', posix.dirname(dst));
        // Both names stay: through either one the file must allow no more than through the other (a
        // link from /free into a drop box would let the client go on changing what it "uploaded").
        k.noGain(src, dst, 'a hard link');
        k.noGain(dst, src, 'a hard link');
        return this.strict().link(src, dst);
      },
    );
  }
}
