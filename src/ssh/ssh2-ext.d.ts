/**
 * Types for the members that patches/ssh2+1.17.0.patch adds to ssh2 1.17.0
 * (applied by patch-package on `npm install`). Server mode only; the ssh2
 * client is unchanged. test/unit/ssh2-patch.test.ts checks the patch is in
 * place and behaves as described here.
 */
import type {} from 'ssh2';

declare module 'ssh2' {
  /**
   * One extension announced in the SFTP VERSION reply
   * (draft-ietf-secsh-filexfer-02 section 3: `string name, string data`),
   * e.g. `['limits@openssh.com', '1']`.
   */
  export type SftpServerExtension = readonly [name: string, data: string];

  /**
   * Payload of the server-side SFTP `protocol-error` event. The channel stays
   * open in both cases; framing errors are still fatal (`error` event).
   * - `unknown-type`: a well-framed packet of a type the server does not
   *   handle. If it carried a request id (`reqID` defined) ssh2 already
   *   replied STATUS OP_UNSUPPORTED "Unsupported request"; with fewer than 4
   *   bytes after the type byte there is no reply and `reqID` is undefined.
   * - `malformed`: a known request whose fields do not parse; ssh2 already
   *   replied STATUS BAD_MESSAGE "Bad message" for `reqID`. `message` is the
   *   former fatal message, e.g. "Malformed READ packet".
   */
  export type SftpProtocolError =
    | {
        readonly kind: 'unknown-type';
        readonly type: number;
        readonly reqID: number | undefined;
      }
    | {
        readonly kind: 'malformed';
        readonly type: number;
        readonly reqID: number;
        readonly message: string;
      };

  /** Payload of the server Connection `refused-channel` event. */
  export interface RefusedChannelInfo {
    /** Channel type, e.g. "tun@openssh.com", "x11", "auth-agent@openssh.com". */
    readonly type: string;
    /** The parsed CHANNEL_OPEN message as ssh2 saw it. */
    readonly info: {
      readonly type: string;
      readonly sender: number;
      readonly window: number;
      readonly packetSize: number;
      readonly data: Readonly<Record<string, unknown>>;
    };
  }

  /** Payload of the server Connection `refused-global-request` event. */
  export interface RefusedGlobalRequestInfo {
    /** Request name, e.g. "keepalive@openssh.com". */
    readonly name: string;
    /** Whether the client asked for a reply (it got REQUEST_FAILURE). */
    readonly wantReply: boolean;
  }

  interface SFTPWrapper {
    /**
     * (Server-only) Extensions listed in the VERSION reply. Set it
     * synchronously right after `accept()`; it is read when INIT arrives.
     * Unset or empty: plain version 3, as stock ssh2.
     */
    serverExtensions?: ReadonlyArray<SftpServerExtension> | undefined;

    /**
     * (Server-only, patched) When true, request paths (OPEN, STAT, RENAME, SYMLINK, …) arrive as
     * the raw Buffers the client sent instead of UTF-8-decoded strings, and NAME replies accept
     * Buffers for filename/longname. Set it right after `accept()`.
     */
    namesAsBuffers?: boolean;

    /**
     * (Server-only) Sends SSH_FXP_EXTENDED_REPLY (201) for `reqId`; `data` is
     * the raw reply body that follows the id. Queued like the other replies
     * when the client's window is exhausted.
     */
    extendedReply(reqId: number, data: Buffer): void;

    /**
     * Bytes of replies queued because the client's channel window is
     * exhausted (0 when nothing is queued). See the `drain` event.
     */
    outgoingBytes(): number;
    /**
     * (Server-only, patched) DATA reply built in place: `buf` holds `len` bytes of file data after
     * 13 bytes of room for the header. True when the channel copied all of it (`buf` may be reused).
     */
    dataInPlace(reqId: number, buf: Buffer, len: number): boolean;
    /**
     * (Server-only, patched) Gives back the buffer a 'WRITE' request's data was assembled in, for the
     * next WRITE; call it once nothing uses `data` any more. A no-op for data not from that pool.
     */
    releaseWriteData(data: Buffer): void;
    /**
     * (Server-only, patched) Stops parsing requests at the next packet boundary: what the client
     * sends meanwhile waits unparsed (at most the channel window) and the window is withheld.
     */
    pauseInput(): void;
    /** (Server-only, patched) Parses what waited (it may pause again), then grants the held-back window. */
    resumeInput(): void;
    /** (Server-only, patched) Bytes received but not yet parsed (waiting since pauseInput()). */
    pendingInputBytes(): number;
    /** (Server-only, patched) Called with each payload that waited for the client's window, once sent. */
    onPayloadSent: ((payload: Buffer) => void) | undefined;
    /** The channel's view of the client's window: bytes it may still send before a WINDOW_ADJUST. */
    readonly outgoing: { window: number };
    /** When set, BAD_MESSAGE / OP_UNSUPPORTED answers to malformed or unknown packets go through it (reply order). */
    answerProtocolError?: ((reqID: number, code: number, message: string) => void) | undefined;

    /** (Server-only) A recoverable protocol error; see SftpProtocolError. */
    on(event: 'protocol-error', listener: (err: SftpProtocolError) => void): this;
    /** (Server-only) The outbound queue (outgoingBytes()) became empty. */
    on(event: 'drain', listener: () => void): this;
    once(event: 'protocol-error', listener: (err: SftpProtocolError) => void): this;
    once(event: 'drain', listener: () => void): this;
  }

  interface Connection {
    /**
     * (Patched) Ends the connection with a DISCONNECT of reason `code` (RFC 4253 §11.1, default
     * 11 BY_APPLICATION) and a description the client prints (ASCII, at most 200 characters).
     */
    end(code?: number, description?: string): this;
    /**
     * A channel open of a type ssh2 does not know was refused with
     * UNKNOWN_CHANNEL_TYPE (emitted just before the reply is sent).
     */
    on(event: 'refused-channel', listener: (info: RefusedChannelInfo) => void): this;
    /**
     * A global request ssh2 answered by itself (REQUEST_FAILURE if
     * `wantReply`), i.e. one that did not reach the `request` event.
     */
    on(
      event: 'refused-global-request',
      listener: (info: RefusedGlobalRequestInfo) => void,
    ): this;
    once(event: 'refused-channel', listener: (info: RefusedChannelInfo) => void): this;
    once(
      event: 'refused-global-request',
      listener: (info: RefusedGlobalRequestInfo) => void,
    ): this;
  }
}
