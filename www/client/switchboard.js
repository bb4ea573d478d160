/*! Switchboard page client: include with one classic script tag,
 *    <script src="https://SWITCHBOARD/client/switchboard.js"></script>
 *  It defines every sv_* command at once; calls made before the client has loaded are kept
 *  and replayed in order, so inline code right after the tag works. The client itself
 *  (WebAssembly) is loaded from the same place as this file. */
(function () {
  'use strict';
  if (window.__switchboard) {
    return;
  }
  var NAMES = [
    'sv_setserveraddress', 'sv_setuserinfo', 'sv_setomlink', 'sv_login', 'sv_logoff',
    'sv_makecall', 'sv_answercall', 'sv_rejectcall', 'sv_clearoutgoingcall',
    'sv_clearincomingcall', 'sv_hangup', 'sv_watch', 'sv_ismaster', 'sv_settokenprovider',
    'sv_setoption'
  ];
  var script = document.currentScript;
  // The folder this file was loaded from: the client's files sit beside it.
  var base = new URL('.', (script && script.src) || location.href).href;
  var queue = [];
  // <script data-escape-names ...>: the page writes names with innerHTML.
  var escape = script && script.getAttribute('data-escape-names');
  if (escape !== null && escape !== undefined && escape !== 'false') {
    queue.push(['sv_setoption', ['escapeNames', true]]);
  }

  NAMES.forEach(function (name) {
    window[name] = function () {
      queue.push([name, Array.prototype.slice.call(arguments)]);
      return name === 'sv_ismaster' ? false : undefined;
    };
  });

  function status(text) {
    if (typeof window.my_onstatusmessage === 'function') {
      try {
        window.my_onstatusmessage(text);
      } catch (e) {
        console.error(e);
      }
    }
  }

  // The wasm download starts now, beside the glue's, and compiles as it streams in.
  var wasm = fetch(base + 'pkg/switchboard_client_bg.wasm');
  var ready = import(base + 'pkg/switchboard_client.js')
    .then(function (mod) {
      return mod.default({ module_or_path: wasm })
        .then(function () { return mod; });
    })
    .then(function (mod) {
      NAMES.forEach(function (name) {
        window[name] = mod[name];
      });
      var calls = queue.splice(0);
      var named = calls.some(function (c) { return c[0] === 'sv_setserveraddress'; });
      if (!named) {
        // No address given: the server is where this file came from.
        mod.sv_setserveraddress(new URL('..', base).href);
      }
      calls.forEach(function (c) {
        mod[c[0]].apply(null, c[1]);
      });
      return mod;
    }, function (err) {
      console.error('switchboard: the client could not be loaded', err);
      status('the call client could not be loaded');
      throw err;
    });

  window.__switchboard = { base: base, ready: ready };
})();
