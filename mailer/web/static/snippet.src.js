/*
 * mailer tracking snippet: the readable source of /snippet.js.
 * Edit this file, then run `scripts/build-snippet.sh` and commit both files (the app serves
 * snippet.js as built; nothing is built at run time).
 *
 * Embedding (the store's pages):
 *
 *   <script>
 *     // Optional stub: calls made before snippet.js has loaded are queued and replayed in order.
 *     window.mailer = window.mailer || {q: [],
 *       identify: function () { this.q.push(["identify"].concat([].slice.call(arguments))); },
 *       track: function () { this.q.push(["track"].concat([].slice.call(arguments))); }};
 *   </script>
 *   <script src="https://mailer.example/snippet.js" data-key="pk_…" async></script>
 *
 *   mailer.identify({email: "ann@example.com", first_name: "Ann"});
 *   mailer.track("cart_updated", {cart_id: "c1", currency: "EUR", value: 20, restore_url: "…",
 *                                 items: [{sku, name, price, quantity, url, image_url}]});
 *   mailer.q.push(["track", "product_viewed", {sku: "MUG-1"}]);   // also works, before or after load
 *   mailer.flush();   // send now (e.g. before the store's own code navigates away)
 *
 * What it does: keeps a random first-party anonymous id (cookie `mailer_aid`, localStorage as a
 * fallback), notices an email typed into the page's email fields, batches events (1 s or 10
 * events) and sends them to <origin of this script>/api/v1/track: by fetch (keepalive) while the
 * page lives, since its answer tells us to keep failed events for a retry, and by sendBeacon when
 * the page is hidden or unloads. No fingerprinting: nothing is read from the device beyond what
 * the store's own code passes in. It never throws into the host page; events the server refuses
 * are reported with console.warn for the store's developer.
 */
(function (window, document) {
  "use strict";

  var AID = "mailer_aid";
  var EMAIL_KEY = "mailer_email";
  var RETRY_KEY = "mailer_retry";
  var RETRY_MAX = 50; // events kept for a later retry: enough for a visit, small enough for storage
  var BATCH_MAX = 10; // flush at once when this many events are waiting...
  var BATCH_DELAY = 1000; // ...else after this many milliseconds
  var BODY_MAX = 60000; // sendBeacon and keepalive fetch refuse bodies over 64 KB in flight
  var TRAITS = ["first_name", "last_name", "timezone", "consent", "consent_source", "consent_at"];
  var EMAIL_RE = /^[^\s@<>()[\],;:"\\]+@[^\s@<>()[\],;:"\\]+\.[A-Za-z0-9-]{2,}$/;

  var existing = window.mailer;
  if (existing && existing.loaded) return; // the snippet is on the page twice

  var endpoint = null;
  var key = null;
  var anonymousId = null;
  var email = null;
  var queue = []; // events not yet handed to the network
  var timer = null;
  var sending = false; // one fetch at a time, so the server sees events in order

  function safely(fn) {
    return function () {
      try {
        return fn.apply(this, arguments);
      } catch (e) {
        // The host page must never see our errors.
      }
    };
  }

  function storageGet(name) {
    try {
      return window.localStorage.getItem(name);
    } catch (e) {
      return null; // storage disabled (privacy mode, sandboxed iframe)
    }
  }

  function storageSet(name, value) {
    try {
      if (value === null) window.localStorage.removeItem(name);
      else window.localStorage.setItem(name, value);
    } catch (e) {
      // full or disabled: the cookie (for the id) still works
    }
  }

  function uuid() {
    var bytes = new Uint8Array(16);
    var cryptoObj = window.crypto || window.msCrypto;
    if (cryptoObj && cryptoObj.getRandomValues) {
      cryptoObj.getRandomValues(bytes);
    } else {
      for (var i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
    var hex = "";
    for (var j = 0; j < 16; j++) {
      hex += (bytes[j] + 0x100).toString(16).slice(1);
      if (j === 3 || j === 5 || j === 7 || j === 9) hex += "-";
    }
    return hex;
  }

  function readCookie(name) {
    var parts = (document.cookie || "").split(";");
    for (var i = 0; i < parts.length; i++) {
      var pair = parts[i].replace(/^\s+/, "");
      if (pair.indexOf(name + "=") === 0) return decodeURIComponent(pair.slice(name.length + 1));
    }
    return null;
  }

  function loadAnonymousId() {
    var id = readCookie(AID) || storageGet(AID);
    if (!id || !/^[0-9a-f-]{36}$/.test(id)) id = uuid();
    // Written back on every page so the year counts from the last visit.
    var secure = window.location.protocol === "https:" ? "; Secure" : "";
    try {
      document.cookie = AID + "=" + id + "; path=/; max-age=31536000; SameSite=Lax" + secure;
    } catch (e) {
      // cookies disabled: localStorage keeps the id
    }
    storageSet(AID, id);
    return id;
  }

  function cleanEmail(value) {
    if (typeof value !== "string") return null;
    var trimmed = value.replace(/^\s+|\s+$/g, "").toLowerCase();
    return trimmed.length <= 254 && EMAIL_RE.test(trimmed) ? trimmed : null;
  }

  function plain(value) {
    // A copy that is plain JSON: drops functions and DOM nodes, refuses cycles (throws → caught).
    return value === undefined || value === null ? {} : JSON.parse(JSON.stringify(value));
  }

  function enqueue(event) {
    if (!endpoint) return; // no key or no script tag: nowhere to send it
    event.id = uuid();
    event.anonymous_id = anonymousId;
    if (email) event.email = email;
    event.timestamp = new Date().toISOString();
    queue.push(event);
    if (queue.length > 500) queue.shift(); // a server that never answers must not grow the page's memory
    if (queue.length >= BATCH_MAX) flush(false);
    else if (!timer) timer = window.setTimeout(safely(function () { timer = null; flush(false); }), BATCH_DELAY);
  }

  function identify(traits) {
    var data = plain(traits);
    if (typeof data !== "object" || Array.isArray(data)) return;
    if (data.email !== undefined) {
      var found = cleanEmail(data.email);
      if (!found) return; // a typo is not an identity
      email = found;
      storageSet(EMAIL_KEY, email); // later pages send it with every event
    }
    if (!email) return; // nothing to tie the traits to yet
    // Only the traits the server knows: one unknown key would get the whole identify refused,
    // and with it the link between this browser and the person.
    var known = {};
    for (var i = 0; i < TRAITS.length; i++) {
      if (data[TRAITS[i]] !== undefined && data[TRAITS[i]] !== null) known[TRAITS[i]] = data[TRAITS[i]];
    }
    enqueue({type: "identify", traits: known});
  }

  function track(name, properties) {
    if (typeof name !== "string" || !name) return;
    var data = plain(properties);
    if (typeof data !== "object" || Array.isArray(data)) return;
    enqueue({type: "track", event: name, properties: data});
  }

  function call(args) {
    if (!args || !args.length) return;
    var method = args[0] === "identify" ? identify : args[0] === "track" ? track : null;
    if (method) method.apply(null, Array.prototype.slice.call(args, 1));
  }

  // --- sending -----------------------------------------------------------------------------

  function saveForRetry(events) {
    var saved = [];
    try {
      saved = JSON.parse(storageGet(RETRY_KEY) || "[]");
      if (!Array.isArray(saved)) saved = [];
    } catch (e) {
      saved = [];
    }
    storageSet(RETRY_KEY, JSON.stringify(saved.concat(events).slice(-RETRY_MAX)));
  }

  function takeRetries() {
    var saved = null;
    try {
      saved = JSON.parse(storageGet(RETRY_KEY) || "null");
    } catch (e) {
      saved = null;
    }
    storageSet(RETRY_KEY, null);
    if (Array.isArray(saved) && saved.length) {
      // The original ids go again, so an event that did arrive is only counted as a duplicate.
      queue = saved.concat(queue).slice(-RETRY_MAX);
      flush(false);
    }
  }

  function body(events) {
    return JSON.stringify({key: key, batch: events});
  }

  function size(text) {
    return new Blob([text]).size; // bytes as sent (UTF-8), not UTF-16 code units
  }

  function nextBatch() {
    // As many queued events as fit one request; an event too big to ever fit is dropped.
    var batch = [];
    var total = size(body([]));
    while (queue.length && batch.length < 100) {
      var length = size(JSON.stringify(queue[0])) + 1;
      if (total + length <= BODY_MAX) {
        total += length;
        batch.push(queue.shift());
      } else if (batch.length) {
        break;
      } else {
        queue.shift();
      }
    }
    return batch;
  }

  function beacon(events) {
    try {
      if (navigator.sendBeacon) {
        return navigator.sendBeacon(endpoint, new Blob([body(events)], {type: "text/plain"}));
      }
    } catch (e) {
      // a refused beacon falls through to fetch
    }
    return false;
  }

  function post(events, unloading) {
    // Events posted while the page lives go by fetch, whose answer tells us to retry; while the page
    // goes away only a beacon (or a keepalive fetch) outlives it, and nobody is left to hear back.
    if (unloading && beacon(events)) return;
    if (!window.fetch) {
      if (!beacon(events)) saveForRetry(events);
      return;
    }
    if (navigator.onLine === false) {
      saveForRetry(events.concat(queue));
      queue = [];
      return;
    }
    var request;
    try {
      sending = !unloading;
      request = window.fetch(endpoint, {
        method: "POST",
        body: body(events),
        keepalive: true,
        credentials: "omit",
        headers: {"Content-Type": "text/plain"}
      });
    } catch (e) {
      sending = false;
      saveForRetry(events);
      return;
    }
    request.then(
      safely(function (response) {
        sending = false;
        // 429 and 5xx are worth another try; any other refusal would be refused again.
        if (response.status === 429 || response.status >= 500) saveForRetry(events);
        if (queue.length) flush(false);
        // Tell the store's developer (in the console, as a warning) what the server refused and why.
        if (response.status === 202) {
          response.json().then(safely(function (answer) {
            if (answer.rejected.length) console.warn("mailer: events refused", answer.rejected);
          }), function () {});
        } else if (response.status >= 400) {
          console.warn("mailer: the tracking API answered " + response.status);
        }
      }),
      safely(function () {
        // Offline or the server is down: keep everything for the next page or the `online` event
        // rather than trying each waiting batch against a network that just failed.
        sending = false;
        saveForRetry(events.concat(queue));
        queue = [];
      })
    );
  }

  function flush(unloading) {
    if (timer) {
      window.clearTimeout(timer);
      timer = null;
    }
    if (!endpoint || !key) return;
    if (sending && !unloading) return; // the answer to the request in flight flushes again
    while (queue.length) {
      var batch = nextBatch();
      if (batch.length) post(batch, unloading);
      if (!unloading) break; // the rest follows when this request is answered
    }
  }

  // --- the page ------------------------------------------------------------------------------

  function isEmailField(el) {
    if (!el || el.tagName !== "INPUT" || el.type === "password" || el.type === "hidden") return false;
    if (el.type === "email") return true;
    var hint = ((el.name || "") + " " + (el.id || "") + " " + (el.getAttribute("autocomplete") || "")).toLowerCase();
    return hint.indexOf("email") !== -1;
  }

  function captureEmail(el) {
    if (!isEmailField(el)) return;
    var found = cleanEmail(el.value);
    if (found && found !== email) identify({email: found});
  }

  function onField(event) {
    captureEmail(event.target);
  }

  function onSubmit(event) {
    var form = event.target;
    if (!form || !form.elements) return;
    for (var i = 0; i < form.elements.length; i++) captureEmail(form.elements[i]);
  }

  function findScript() {
    var script = document.currentScript;
    if (!script || !script.getAttribute("data-key")) {
      script = document.querySelector('script[data-key][src*="snippet.js"]');
    }
    return script;
  }

  safely(function start() {
    var script = findScript();
    if (script && script.src) {
      endpoint = new URL(script.src, window.location.href).origin + "/api/v1/track";
      key = script.getAttribute("data-key");
    }
    anonymousId = loadAnonymousId();
    email = cleanEmail(storageGet(EMAIL_KEY));

    var api = {
      loaded: true,
      identify: safely(identify),
      track: safely(track),
      flush: safely(function () { flush(false); }),
      // `mailer.q.push([...])` keeps working once the snippet has loaded.
      q: {push: safely(function () { for (var i = 0; i < arguments.length; i++) call(arguments[i]); })}
    };
    var pending = existing && existing.q && existing.q.length ? Array.prototype.slice.call(existing.q) : [];
    window.mailer = api;
    for (var i = 0; i < pending.length; i++) safely(call)(pending[i]);

    // Blur does not bubble: capture it on the document so fields added later are covered too.
    document.addEventListener("change", safely(onField), true);
    document.addEventListener("blur", safely(onField), true);
    document.addEventListener("submit", safely(onSubmit), true);
    document.addEventListener("visibilitychange", safely(function () {
      if (document.visibilityState === "hidden") flush(true);
    }));
    window.addEventListener("pagehide", safely(function () { flush(true); }));
    window.addEventListener("online", safely(takeRetries));
    takeRetries();
  })();
})(window, document);
