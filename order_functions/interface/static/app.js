// Valerix live dashboard: plain JS, no dependencies. Talks only to the real API with relative URLs.
"use strict";

(() => {
  // The page lives at <base>/dashboard; every API path is relative to <base>/ (normally /api/).
  const API = location.pathname.replace(/\/dashboard\/?$/, "/");
  // In Azure the API needs a function key: open the page as /api/dashboard?code=<key> and it is sent along.
  const FUNCTION_KEY = new URLSearchParams(location.search).get("code");
  const $ = (id) => document.getElementById(id);

  // ---------------------------------------------------------------- sign-in
  // The API needs a bearer token. It lives in sessionStorage (this tab only, gone when it closes), never in a URL.
  // In Azure (the page's signin-* settings present): Entra ID through the vendored MSAL.js, authorization code
  // flow with PKCE by redirect; MSAL keeps its own cache in sessionStorage and renews the token silently.
  // Locally the URL `make up` prints carries a one-time code in its fragment (never sent to a server): it is
  // exchanged once at the devstack issuer for a short-lived token and removed from the address bar.
  // With neither, a token can be pasted.
  const TOKEN_KEY = "valerix.token";
  const meta = (name) => {
    const value = (document.querySelector(`meta[name="${name}"]`) || {}).content || "";
    return value.startsWith("__") ? "" : value;  // a placeholder the server did not fill
  };
  const DEV_SIGNIN = meta("valerix-dev-signin");
  const ENTRA = {
    clientId: meta("valerix-signin-client-id"), authority: meta("valerix-signin-authority"),
    scope: meta("valerix-signin-scope"),
  };
  const ENTRA_MODE = Boolean(ENTRA.clientId && ENTRA.authority && ENTRA.scope);
  let token = sessionStorage.getItem(TOKEN_KEY) || "";
  function claims(jwt) {
    try {
      const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(part + "=".repeat((4 - part.length % 4) % 4)));
    } catch { return null; }
  }
  function useToken(value) {
    const c = claims(value);
    if (!c || !c.sub || (c.exp && c.exp * 1000 < Date.now())) { token = ""; sessionStorage.removeItem(TOKEN_KEY); }
    else { token = value; sessionStorage.setItem(TOKEN_KEY, value); }
    const who = token ? claims(token) : null;
    const name = who ? (who.preferred_username || who.name || who.sub) : "";
    $("who").textContent = who ? `signed in as ${name}${(who.roles || []).length ? ` (${who.roles.join(", ")})` : ""}`
      : "not signed in";
    $("co-customer").value = who ? who.sub : "";
    $("signin-form").hidden = Boolean(token) || ENTRA_MODE;
    $("entra-signin").hidden = Boolean(token) || !ENTRA_MODE;
  }

  // Entra ID: MSAL.js is loaded only in this mode, from this app (static/vendor/, no CDN).
  let msalApp = null;
  function loadScript(src) {
    return new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = src;
      script.onload = resolve;
      script.onerror = () => reject(new Error(`cannot load ${src}`));
      document.head.append(script);
    });
  }
  async function entraApp() {
    if (msalApp) return msalApp;
    await loadScript(`dashboard/vendor/msal-browser.min.js?v=${encodeURIComponent(meta("valerix-asset-version"))}`);
    const app = new window.msal.PublicClientApplication({
      auth: { clientId: ENTRA.clientId, authority: ENTRA.authority, redirectUri: location.origin + location.pathname },
      cache: { cacheLocation: "sessionStorage" },
    });
    await app.initialize();
    msalApp = app;
    return app;
  }
  async function entraSilentToken(app) {  // from MSAL's cache, or renewed with its refresh token; "" if it needs a sign-in
    const account = app.getActiveAccount() || app.getAllAccounts()[0];
    if (!account) return "";
    try { return (await app.acquireTokenSilent({ scopes: [ENTRA.scope], account })).accessToken; }
    catch (err) { console.warn("entra: a sign-in is needed", err); return ""; }
  }
  function entraFailed(err) {
    console.warn("entra sign-in", err);
    $("entra-signin-note").textContent = `Sign-in failed: ${(err && err.message) || err}`;
  }
  async function entraSignIn() {
    const app = await entraApp();
    const result = await app.handleRedirectPromise();  // back from the authorize endpoint: MSAL redeems the code
    if (result && result.account) app.setActiveAccount(result.account);
    const fresh = (result && result.accessToken) || (token ? "" : await entraSilentToken(app));
    if (fresh) useToken(fresh);
  }
  let renewing = null;
  function renewEntraToken() {  // after a 401: one silent renewal at a time
    if (!ENTRA_MODE || renewing) return;
    renewing = entraApp().then(entraSilentToken).then((fresh) => { if (fresh) useToken(fresh); })
      .catch(entraFailed).finally(() => { renewing = null; });
  }
  $("entra-signin-button").addEventListener("click", async () => {
    try { await (await entraApp()).loginRedirect({ scopes: [ENTRA.scope] }); } catch (err) { entraFailed(err); }
  });

  async function signIn() {
    if (ENTRA_MODE) {
      useToken(token);
      try { await entraSignIn(); } catch (err) { entraFailed(err); }
      return;
    }
    const code = new URLSearchParams(location.hash.slice(1)).get("signin");
    if (code) {
      history.replaceState(null, "", location.pathname + location.search);  // a code is good once anyway
      if (DEV_SIGNIN) {
        try {
          const r = await fetch(DEV_SIGNIN, { method: "POST", body: new URLSearchParams({ code }), cache: "no-store" });
          const b = await r.json();
          if (r.ok && b.access_token) useToken(b.access_token);
        } catch (err) { console.warn("sign-in", err); }
      }
    }
    useToken(token);
  }
  $("signin-form").addEventListener("submit", (e) => {
    e.preventDefault();
    useToken($("signin-token").value.trim().replace(/^Bearer\s+/i, ""));
    $("signin-token").value = "";
  });

  async function api(path, options = {}) {
    const headers = { Accept: "application/json", ...(options.headers || {}) };
    if (FUNCTION_KEY) headers["x-functions-key"] = FUNCTION_KEY;
    if (token) headers.Authorization = `Bearer ${token}`;
    const resp = await fetch(API + path, {
      cache: "no-store", ...options, headers, signal: AbortSignal.timeout(options.timeoutMs || 10000),
    });
    if (resp.status === 401 && token) { useToken(""); renewEntraToken(); }  // expired or revoked: get a new one
    const text = await resp.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch { body = text; }
    return { status: resp.status, ok: resp.ok, body, headers: resp.headers };
  }

  // Runs fn now and again `ms` after each run finishes (never two at once); `kick()` runs it early.
  function every(ms, fn) {
    let timer = null;
    let running = false;
    const run = async () => {
      clearTimeout(timer);
      if (running) return;
      running = true;
      try { await fn(); } catch (err) { console.warn(fn.name, err); } finally { running = false; }
      timer = setTimeout(run, ms);
    };
    run();
    return { kick: run };
  }

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  }

  const fmtMs = (ms) => (ms === null || ms === undefined) ? "–"
    : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`;
  const shortId = (id) => id.slice(0, 8);
  const problemText = (r) => (r.body && typeof r.body === "object")
    ? [r.body.title, r.body.detail].filter(Boolean).join(": ") : String(r.body || "");

  let lastOk = 0;
  function connected(ok) {
    if (ok) lastOk = Date.now();
    $("conn").textContent = lastOk
      ? `updated ${new Date(lastOk).toLocaleTimeString()}${ok ? "" : " · API not answering"}`
      : "API not answering";
  }

  // ---------------------------------------------------------------- latency alert
  async function latency() {
    const r = await api("stats/latency");
    if (!r.ok || !r.body) { connected(false); return; }
    connected(true);
    const s = r.body;
    const slow = s.state === "SLOW";
    const alert = $("latency-alert");
    alert.dataset.state = slow ? "SLOW" : "OK";
    alert.querySelector(".alert-icon").textContent = slow ? "⚠" : "✓";
    $("latency-state").textContent = slow ? "SLOW" : "OK";
    const limit = fmtMs(s.threshold_ms);
    $("latency-text").textContent = s.count === 0
      ? `no requests in the last ${s.window_s} s`
      : slow ? `average ${fmtMs(s.average_ms)} is above ${limit} over the last ${s.window_s} s`
        : `average ${fmtMs(s.average_ms)} is within ${limit} over the last ${s.window_s} s`;
    $("lat-avg").textContent = fmtMs(s.average_ms);
    $("lat-p95").textContent = fmtMs(s.p95_ms);
    $("lat-max").textContent = fmtMs(s.max_ms);
    $("lat-count").textContent = String(s.count);
  }

  // ---------------------------------------------------------------- health
  const CHECK_LABELS = { orders_database: "Orders database", inventory: "Inventory (gRPC + its database)", bus: "Bus" };
  async function health() {
    const r = await api("health", { timeoutMs: 15000 });
    const overall = $("health-overall");
    const checks = (r.body && r.body.checks) || {};
    const ok = r.status === 200;
    overall.dataset.ok = String(ok);
    overall.textContent = ok ? "✓ all dependencies OK" : `✗ degraded (HTTP ${r.status})`;
    const list = $("health-checks");
    list.replaceChildren(...Object.entries(checks).map(([name, c]) => {
      const good = c.status === "ok";
      const detail = [c.kind, c.latency_ms !== undefined ? `${c.latency_ms} ms` : null].filter(Boolean).join(", ");
      return el("li", { class: "check", "data-check": name, "data-ok": String(good) },
        el("span", { class: "dot", "aria-hidden": "true", text: good ? "✓" : "✗" }),
        el("span", { class: "check-name", text: CHECK_LABELS[name] || name }),
        el("span", { class: "check-state", text: good ? "OK" : "FAILED" }),
        detail ? el("span", { class: "muted small", text: ` (${detail})` }) : null,
        good ? null : el("div", { class: "check-error small", text: c.error || "" }));
    }));
    try {
      const b = await api("stats/bus");
      if (b.ok && b.body) {
        const st = b.body.stats;
        $("bus-stats").textContent = st
          ? `${b.body.queue} (${b.body.kind}): ${st.active} active, ${st.locked} locked, ${st.scheduled} scheduled,`
            + ` ${st.dead_lettered} dead-lettered, ${st.completed} completed, ${st.redeliveries} redeliveries`
          : `${b.body.queue}: ${b.body.kind} (statistics in the Azure portal)`;
      }
    } catch { /* optional */ }
  }

  // ---------------------------------------------------------------- products + checkout select
  let products = [];
  async function refreshProducts() {
    const r = await api("products");
    if (!r.ok) {
      $("products").querySelector("tbody").replaceChildren(
        el("tr", {}, el("td", { colspan: "4", text: `products unavailable (HTTP ${r.status}) ${problemText(r)}` })));
      return;
    }
    products = r.body.products;
    $("products-as-of").textContent = r.body.source === "copy"
      ? `the Order Service's catalogue copy, as of ${r.body.as_of ? new Date(r.body.as_of).toLocaleTimeString() : "—"}`
      : "read from the inventory (the catalogue copy was empty)";
    $("products").querySelector("tbody").replaceChildren(...products.map((p) => el("tr", { "data-product": p.product_id },
      el("td", {}, el("code", { text: p.product_id })), el("td", { text: p.name }),
      el("td", { class: "num", text: String(p.available) }), el("td", { class: "num", text: String(p.reserved) }))));
    const select = $("co-product");
    const chosen = select.value;
    select.replaceChildren(...products.map((p) => el("option", {
      value: p.product_id, text: `${p.name || p.product_id} — ${p.available} in stock`,
    })));
    if (chosen && products.some((p) => p.product_id === chosen)) select.value = chosen;
  }

  // ---------------------------------------------------------------- orders
  const VIA = {
    "inventory-reply": "direct reply",
    "verify-order": "via Service Bus (verify-order)",
    reconciler: "by the reconciler",
    cancel: "cancelled by the customer",
    "reservation-event": "by the inventory's event",
    ship: "shipped by operations",
  };
  const STATE_ICON = { pending: "…", confirmed: "✓", rejected: "✗", cancelled: "⊘", shipped: "⇪" };
  let ordersPoll = null;

  async function cancelOrder(id, button) {
    button.disabled = true;
    const r = await api(`orders/${encodeURIComponent(id)}/cancel`, { method: "POST" });
    $("orders-note").textContent = r.ok
      ? `order ${shortId(id)}: cancel → HTTP ${r.status} (${r.body.status})`
      : `order ${shortId(id)}: cancel → HTTP ${r.status} ${problemText(r)}`;
    ordersPoll.kick();
    productsPoll.kick();
  }

  function orderRow(o) {
    const items = o.items.map((i) => `${i.quantity} × ${i.product_id}`).join(", ");
    const pendingFor = Math.max(0, Date.now() - Date.parse(o.created_at));
    const took = o.status === "pending" ? `pending for ${fmtMs(pendingFor)}` : `settled in ${fmtMs(o.settle_ms)}`;
    const viaBus = o.settled_via === "verify-order";
    const canCancel = o.status === "pending" || o.status === "confirmed";
    return el("li", { class: "order", "data-order-id": o.order_id, "data-status": o.status,
                      "data-via": o.settled_via || "" },
      el("span", { class: `state state-${o.status}` },
        el("span", { "aria-hidden": "true", text: STATE_ICON[o.status] || "" }), ` ${o.status}`),
      el("span", { class: "order-id" }, el("code", { title: o.order_id, text: shortId(o.order_id) })),
      el("span", { class: "order-who", text: `${o.customer_id} · ${items}` }),
      el("span", { class: "order-took", text: took }),
      o.settled_via ? el("span", { class: viaBus ? "via via-bus" : "via", text: VIA[o.settled_via] || o.settled_via })
        : el("span", { class: "via muted", text: "—" }),
      o.message ? el("span", { class: "order-message small", text: o.message }) : null,
      o.reason ? el("span", { class: "order-reason muted small", text: o.reason }) : null,
      canCancel ? el("button", { type: "button", class: "secondary small-btn", "aria-label": `Cancel order ${shortId(o.order_id)}`,
        onclick: (e) => cancelOrder(o.order_id, e.currentTarget), text: "Cancel" }) : el("span"));
  }

  async function refreshOrders() {
    const r = await api("orders?limit=25");
    if (!r.ok) { $("orders").replaceChildren(el("li", { text: `orders unavailable (HTTP ${r.status})` })); return; }
    const list = r.body.orders;
    $("orders").replaceChildren(...(list.length ? list.map(orderRow) : [el("li", { class: "muted", text: "no orders yet" })]));
  }

  // ---------------------------------------------------------------- checkout
  let lastRequest = null;
  function showCheckout(r, key) {
    $("co-result").hidden = false;
    const replayed = r.headers.get("Idempotent-Replayed") === "true";
    const state = r.body && r.body.status ? ` — ${r.body.status}` : "";
    $("co-status").textContent = `HTTP ${r.status}${state}`;
    $("co-status").dataset.status = String(r.status);
    $("co-message").textContent = r.body && r.body.message ? r.body.message : "";
    $("co-replayed").textContent = replayed ? "Idempotent-Replayed: true (the same order, not a new one)" : "";
    $("co-replayed").dataset.replayed = String(replayed);
    $("co-key").textContent = key;
    $("co-body").textContent = typeof r.body === "string" ? r.body : JSON.stringify(r.body, null, 2);
  }

  async function sendCheckout(request) {
    $("co-submit").disabled = true;
    $("co-replay").disabled = true;
    try {
      const r = await api("orders", {
        method: "POST", body: request.body, timeoutMs: 30000,
        headers: { "Content-Type": "application/json", "Idempotency-Key": request.key },
      });
      showCheckout(r, request.key);
    } catch (err) {
      $("co-result").hidden = false;
      $("co-status").textContent = `request failed: ${err.message}`;
    } finally {
      $("co-submit").disabled = false;
      $("co-replay").disabled = !lastRequest;
      ordersPoll.kick();
      productsPoll.kick();
    }
  }

  $("checkout-form").addEventListener("submit", (e) => {
    e.preventDefault();
    // no customer_id: the order is placed in the signed-in customer's name (the token's subject)
    const body = JSON.stringify({
      items: [{ product_id: $("co-product").value, quantity: Number($("co-qty").value) }],
    });
    lastRequest = { key: crypto.randomUUID(), body };
    sendCheckout(lastRequest);
  });
  $("co-replay").addEventListener("click", () => { if (lastRequest) sendCheckout(lastRequest); });

  // ---------------------------------------------------------------- notifications (add-on on order-events)
  async function refreshNotifications() {
    const customer = $("co-customer").value.trim();
    $("notes-customer").textContent = customer || "—";
    if (!customer) { $("notifications").replaceChildren(); return; }
    const r = await api(`notifications?customer_id=${encodeURIComponent(customer)}`);
    if (!r.ok) {
      $("notifications").replaceChildren(el("li", { text: `notifications unavailable (HTTP ${r.status})` }));
      return;
    }
    const list = r.body.notifications.slice(0, 10);
    $("notifications").replaceChildren(...(list.length
      ? list.map((n) => el("li", { class: "notification", "data-type": n.type, "data-order-id": n.order_id },
        el("span", { class: "muted small", text: new Date(n.occurred_at).toLocaleTimeString() }),
        ` ${n.message}`))
      : [el("li", { class: "muted", text: "no notifications yet" })]));
  }

  // ---------------------------------------------------------------- chaos
  let chaosDirty = false;
  function describeChaos(c) {
    const gremlin = c.gremlin_enabled
      ? `Gremlin ON: ${c.min_delay_s}–${c.max_delay_s} s delay, pattern ${c.pattern}` : "Gremlin OFF";
    const crash = c.crash_rate > 0 ? `Schrödinger ON: crash rate ${Math.round(c.crash_rate * 100)} %` : "Schrödinger OFF";
    return `${gremlin} · ${crash}`;
  }
  function fillChaos(c) {
    $("chaos-gremlin").checked = c.gremlin_enabled;
    $("chaos-min").value = c.min_delay_s;
    $("chaos-max").value = c.max_delay_s;
    $("chaos-pattern").value = c.pattern;
    $("chaos-crash").value = c.crash_rate;
  }
  function showChaos(c) {
    const state = $("chaos-state");
    state.textContent = describeChaos(c);
    state.dataset.gremlin = c.gremlin_enabled ? "on" : "off";
    state.className = c.gremlin_enabled || c.crash_rate > 0 ? "pill warn" : "pill";
  }
  async function refreshChaos() {
    const r = await api("ops/chaos", { timeoutMs: 20000 });
    const state = $("chaos-state");
    if (r.status === 404) {
      state.textContent = "chaos controls disabled (ADMIN_API_ENABLED is not set)";
      state.dataset.gremlin = "unknown";
      state.className = "pill muted";
      $("chaos-form").hidden = true;
      return;
    }
    if (!r.ok) { state.textContent = `chaos state unavailable (HTTP ${r.status}) ${problemText(r)}`; return; }
    showChaos(r.body);
    $("chaos-form").hidden = false;
    if (!chaosDirty) fillChaos(r.body);
  }
  async function applyChaos(settings) {
    const result = $("chaos-result");
    result.textContent = "applying…";
    const r = await api("ops/chaos", {
      method: "POST", body: JSON.stringify(settings), timeoutMs: 70000,
      headers: { "Content-Type": "application/json" },
    });
    if (r.ok) {
      chaosDirty = false;
      fillChaos(r.body);
      showChaos(r.body);
      result.textContent = `applied: ${describeChaos(r.body)}`;
    } else {
      const errors = (r.body && r.body.errors) || [];
      result.textContent = `HTTP ${r.status}: ${problemText(r)}`
        + errors.map((x) => ` · ${x.field || "body"}: ${x.message}`).join("");
    }
  }
  const chaosForm = $("chaos-form");
  chaosForm.addEventListener("input", () => { chaosDirty = true; });
  chaosForm.addEventListener("submit", (e) => {
    e.preventDefault();
    applyChaos({
      gremlin_enabled: $("chaos-gremlin").checked,
      min_delay_s: Number($("chaos-min").value),
      max_delay_s: Number($("chaos-max").value),
      pattern: $("chaos-pattern").value.trim(),
      crash_rate: Number($("chaos-crash").value),
    });
  });
  $("chaos-off").addEventListener("click", () => applyChaos({ gremlin_enabled: false, crash_rate: 0 }));

  // ---------------------------------------------------------------- start
  let productsPoll = null;
  signIn().finally(() => {
    every(1000, latency);
    productsPoll = every(2000, refreshProducts);
    ordersPoll = every(1500, refreshOrders);
    every(3000, health);
    every(5000, refreshChaos);
    every(2000, refreshNotifications);
  });
})();
