/**
 * An open file under per-folder rules: FSETSTAT on a handle is checked as SETSTAT on its path would
 * be (fchmod and futimens work on a handle opened only for reading). Everything else was decided at
 * OPEN and passes through.
 */
import type { OpenFile, SetAttrs } from '../fs/file-system.js';
import { ForwardingFile } from '../fs/forwarding.js';

export class RuledFile extends ForwardingFile {
  constructor(
    inner: OpenFile,
    /** Throws PERMISSION_DENIED when the rules refuse these attributes. */
    readonly checkAttrs: (attrs: SetAttrs) => void,
  ) {
    super(inner);
  }

  override async fsetstat(attrs: SetAttrs): Promise<void> {
    this.checkAttrs(attrs);
    return this.inner.fsetstat(attrs);
  }
}
