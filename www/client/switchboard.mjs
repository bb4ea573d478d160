/**
 * Switchboard as an ES module: the same client as switchboard.js, with events instead of
 * global my_on* functions.
 *
 *   import { connect } from 'https://SWITCHBOARD/client/switchboard.mjs';
 *   const sb = await connect({ user: 'ann', name: 'Ann' });
 *   sb.addEventListener('incomingcall', (e) => show(e.detail.name, e.detail.link));
 *   sb.call('bob');
 *
 * Both can share a page: they load the same client, so there is still one connection.
 */
import init, * as core from './pkg/switchboard_client.js';

/** Callback name → event type and the names of its arguments. */
const EVENTS = {
  my_onstatuschange: ['statuschange', 'online'],
  my_onmakecall: ['makecall', 'ok'],
  my_onincomingcall: ['incomingcall', 'name', 'link'],
  my_oncallanswered: ['callanswered', 'name', 'link'],
  my_oncallrejected: ['callrejected', 'name'],
  my_onstatusmessage: ['statusmessage', 'message'],
  my_masterstatuschanged: ['masterstatuschanged', 'leader'],
  my_clearincoming: ['clearincoming'],
  my_clearanswered: ['clearanswered'],
  my_clearrejected: ['clearrejected'],
  my_onpresence: ['presence', 'id', 'name', 'online'],
  my_oncallmissed: ['callmissed', 'name'],
  my_oncallended: ['callended', 'name', 'reason'],
};

const here = new URL('.', import.meta.url);

/**
 * Starts the client (once per page) and returns a handle.
 * @param {{server?: string, user?: string, name?: string, token?: string, watch?: string[],
 *          tokenProvider?: () => string | Promise<string>}} options
 */
export async function connect(options = {}) {
  await init({ module_or_path: new URL('pkg/switchboard_client_bg.wasm', here) });
  if (options.tokenProvider) core.sv_settokenprovider(options.tokenProvider);
  const target = new EventTarget();
  const sink = core.add_event_sink((callback, args) => {
    const spec = EVENTS[callback];
    if (!spec) return;
    const [type, ...names] = spec;
    const detail = {};
    names.forEach((n, i) => { detail[n] = args[i]; });
    target.dispatchEvent(new CustomEvent(type, { detail }));
  });
  core.sv_setserveraddress(options.server ?? new URL('..', here).href);
  if (options.user !== undefined) {
    core.sv_setuserinfo(options.user, options.name ?? String(options.user), options.token);
  }
  if (options.watch) core.sv_watch(options.watch);
  return {
    addEventListener: target.addEventListener.bind(target),
    removeEventListener: target.removeEventListener.bind(target),
    login: (user, name, token) => core.sv_login(user, name, token),
    logoff: () => core.sv_logoff(),
    call: (user) => core.sv_makecall(user),
    answer: () => core.sv_answercall(),
    reject: () => core.sv_rejectcall(),
    clearOutgoing: () => core.sv_clearoutgoingcall(),
    clearIncoming: () => core.sv_clearincomingcall(),
    hangup: () => core.sv_hangup(),
    watch: (users) => core.sv_watch(users),
    get leader() { return core.sv_ismaster(); },
    /** Stops delivering events to this handle (the connection stays for other users). */
    close: () => core.remove_event_sink(sink),
  };
}
