/*
 * The session: the HTTP API as the signed-in browser (fp.api), one shared token refresh, keeping the session alive
 * while the tab is open, sign-out, the way to the login page, and reloads that only go to a server that answers.
 * The session lives in HttpOnly cookies (fp_access, fp_refresh). Unsafe methods echo the CSRF cookie as X-CSRFToken;
 * a 401 gets one silent refresh and a retry, then the login page. A wall screen (kiosk token) has no session and
 * never meets the login page. Depends on 10_store.js (who this is: state.role; state.socket) and 11_core.js.
 */
(function () {
  "use strict";

  var fp = window.floorpulse;
  var state = fp.state;
  var REFRESH_MS = 10 * 60 * 1000;

  function cookie(name) {
    var parts = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < parts.length; i++) {
      var eq = parts[i].indexOf("=");
      if (parts[i].slice(0, eq) === name) return decodeURIComponent(parts[i].slice(eq + 1));
    }
    return "";
  }

  fp.session = {
    // a wall screen signed in with a kiosk token (hello says so; before it, /tv's own page)
    kioskScreen: function () {
      var root = document.getElementById("tv-root");
      return state.role === "kiosk" || (fp.kiosk && !!root && root.getAttribute("data-role") === "kiosk");
    },
    // The refresh token itself was refused (missing, expired, revoked, malformed): a new sign-in is needed.
    over: function (status) {
      return status === 401 || status === 422;
    },
  };

  fp.toLogin = function () {
    if (fp.session.kioskScreen()) {
      // a wall screen never meets the login page: /tv shows "activate" or "revoked" itself
      fp.safeReload("signed out");
      return;
    }
    window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname + window.location.search));
  };

  // Reload only into a server that answers (a reload into a dead server leaves the browser's error
  // page on the wall for good); otherwise try again in 10 s.
  var reloading = false;
  fp.safeReload = function (why) {
    if (reloading) return;
    reloading = true;
    fetch(window.location.pathname + window.location.search, {cache: "no-store", credentials: "same-origin"}).then(
      function (r) {
        if (r.status === 200 || r.status === 403) {
          console.info("floorpulse: reloading (" + why + ")");
          window.location.reload();
        } else {
          reloading = false;
          setTimeout(function () { fp.safeReload(why); }, 10000);
        }
      },
      function () {
        reloading = false;
        setTimeout(function () { fp.safeReload(why); }, 10000);
      }
    );
  };

  // One refresh at a time, shared by every caller. Resolves to the HTTP status (0 = network error).
  var refreshing = null;
  var refreshedAt = 0;
  fp.refresh = function () {
    if (!refreshing) {
      refreshing = fetch("/api/auth/refresh", {method: "POST", credentials: "same-origin", headers: {"X-CSRFToken": cookie("csrf_refresh_token")}})
        .then(
          function (r) {
            if (r.ok) refreshedAt = Date.now();
            return r.status;
          },
          function () {
            return 0;
          }
        )
        .then(function (status) {
          refreshing = null;
          return status;
        });
    }
    return refreshing;
  };

  // fp.api("POST", "/api/events", {...}) → Promise of {status, body, headers}; never rejects (status 0 = no answer).
  fp.api = function (method, url, body) {
    method = (method || "GET").toUpperCase();
    function send() {
      var headers = {Accept: "application/json"};
      if (body !== undefined) headers["Content-Type"] = "application/json";
      if (method !== "GET" && method !== "HEAD") headers["X-CSRFToken"] = cookie("_csrf_token");
      return fetch(url, {method: method, credentials: "same-origin", headers: headers, body: body === undefined ? undefined : JSON.stringify(body)}).then(
        function (r) {
          return r.text().then(function (text) {
            var parsed;
            try {
              parsed = text ? JSON.parse(text) : null;
            } catch (e) {
              parsed = {error: text.slice(0, 300), details: []};
            }
            return {status: r.status, body: parsed, headers: r.headers};
          });
        },
        function (err) {
          return {status: 0, body: {error: "no answer from the server (" + (err && err.message) + ")", details: []}, headers: null};
        }
      );
    }
    return send().then(function (res) {
      if (res.status !== 401) return res;
      return fp.refresh().then(function (status) {
        if (status !== 200) {
          if (fp.session.over(status)) fp.toLogin();
          return res; // server or network trouble: the caller shows the 401, the page stays
        }
        return send().then(function (again) {
          if (again.status === 401) fp.toLogin();
          return again;
        });
      });
    });
  };

  // Keep the session alive while the tab is open: once on load (the access cookie may be old; Dash's
  // own callbacks cannot refresh it), then every REFRESH_MS. Timers stop in sleeping machines and slow
  // down in background tabs, so coming back (visible, focus, online) also refreshes when it is due.
  function keepAlive() {
    // a kiosk token has no session to keep alive; on /tv wait for hello to say who this is
    if (state.role === "kiosk" || (fp.kiosk && state.role === null)) return;
    if (Date.now() - refreshedAt < REFRESH_MS - 5000) return;
    refreshedAt = Date.now(); // one attempt per period, also when it fails for lack of network
    fp.refresh().then(function (status) {
      if (!fp.session.over(status)) return;
      // no usable refresh token: the session is over (expired, revoked, signed out elsewhere), unless this
      // tab is signed in some other way that needs no refresh
      fetch("/api/auth/me", {credentials: "same-origin"}).then(function (r) {
        if (r.status === 401) fp.toLogin();
      }, function () {});
    });
  }
  keepAlive();
  setInterval(keepAlive, 30 * 1000);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) keepAlive();
  });
  window.addEventListener("focus", keepAlive);
  window.addEventListener("online", keepAlive);

  fp.logout = function () {
    if (state.socket) state.socket.disconnect();
    fetch("/api/auth/logout", {method: "POST", credentials: "same-origin", headers: {"X-CSRFToken": cookie("_csrf_token")}})
      .catch(function () {})
      .then(function () {
        window.location.assign("/login");
      });
  };
  document.addEventListener("click", function (ev) {
    var t = ev.target && ev.target.closest && ev.target.closest("#fp-signout");
    if (t) {
      ev.preventDefault();
      t.disabled = true;
      fp.logout();
    }
  });
})();
