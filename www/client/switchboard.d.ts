/** Types for switchboard.mjs, the ES-module face of the Switchboard client. */

export interface ConnectOptions {
  /** The server's http(s) base URL; defaults to where switchboard.mjs was loaded from. */
  server?: string;
  /** The site's user id (a token, when given, decides the real identity). */
  user?: string;
  /** Display name; shown as text, never as markup. */
  name?: string;
  /** A token the site's backend signed (HS256 JWT). */
  token?: string;
  /**
   * Returns a fresh token (or a promise of one): asked shortly before the current token
   * expires, and after the server refused an expired one.
   */
  tokenProvider?: () => string | Promise<string>;
  /** Users whose presence to follow (`presence` events). */
  watch?: string[];
}

export interface SwitchboardEventMap {
  statuschange: CustomEvent<{ online: boolean }>;
  makecall: CustomEvent<{ ok: boolean }>;
  incomingcall: CustomEvent<{ name: string; link: string }>;
  callanswered: CustomEvent<{ name: string; link: string }>;
  callrejected: CustomEvent<{ name: string }>;
  statusmessage: CustomEvent<{ message: string }>;
  masterstatuschanged: CustomEvent<{ leader: boolean }>;
  clearincoming: CustomEvent<{}>;
  clearanswered: CustomEvent<{}>;
  clearrejected: CustomEvent<{}>;
  presence: CustomEvent<{ id: string; name: string; online: boolean }>;
  callmissed: CustomEvent<{ name: string }>;
  callended: CustomEvent<{ name: string; reason: string }>;
}

export interface Switchboard {
  addEventListener<K extends keyof SwitchboardEventMap>(
    type: K,
    listener: (event: SwitchboardEventMap[K]) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  removeEventListener<K extends keyof SwitchboardEventMap>(
    type: K,
    listener: (event: SwitchboardEventMap[K]) => void,
    options?: boolean | EventListenerOptions,
  ): void;
  login(user: string, name: string, token?: string): void;
  logoff(): void;
  call(user: string): void;
  answer(): void;
  reject(): void;
  clearOutgoing(): void;
  clearIncoming(): void;
  hangup(): void;
  watch(users: string[] | string): void;
  /** True while this tab holds the browser's connection. */
  readonly leader: boolean;
  close(): void;
}

export function connect(options?: ConnectOptions): Promise<Switchboard>;
