/*
 * The event timeline over a range other than the default (pages/timeline.py _range_layout): bars of the range's
 * events per bucket and severity, and its events newest first, a page at a time. The server counts and filters
 * (GET /api/events/counts, GET /api/events with since/until, type, warehouse_id, floor=1 and the `before` cursor);
 * here the answers are applied. A live range's bars grow by the events the socket brings from `range.until` on,
 * and are counted again by the server every few minutes (its left edge moves with them).
 * Depends on 10_store.js (fp.compact), 11_core.js, 13_session.js (fp.api), 14_gate.js, 15_time.js, 20_timeline.js
 * (fp.eventRow, fp.eventShown).
 */
(function () {
  "use strict";

  var fp = window.floorpulse;
  var state = fp.state;
  var PAGE = 500; // components/event_table.py TABLE_MAX_ROWS
  var RECOUNT_MS = 5 * 60 * 1000;
  var DRAW_MS = 1000;
  var RETRY_MS = 10000;

  var tr = (fp.timelineRange = {
    counts: null, // the server's answer for `countsKey`
    countsKey: null,
    extra: null, // {severity: {bucket start: n}}: live events from counts.range.until on
    seq: 0,
    asking: null, // filter key of a counts request on its way
    countedAt: 0,
    dirty: false,
    drawnAt: 0,
    table: null, // {key, bucket, cursors, page: {events, next}, asking}
    rowsKey: null,
  });

  // what the server filters by: the warehouses of the header's filter and the page's event types
  function filterQuery() {
    var q = "";
    if (state.selected) q += "&warehouse_id=" + encodeURIComponent(Array.from(state.selected).sort().join(","));
    if (state.types) q += "&type=" + encodeURIComponent(Array.from(state.types).sort().join(","));
    return q;
  }

  function addLive(c) {
    var r = tr.counts.range;
    if (c[1] < r.until || !fp.eventShown(c)) return;
    var b = c[1] - ((c[1] - r.since) % r.bucket_ms);
    var sev = tr.extra[c[3]] || tr.extra.info;
    sev[b] = (sev[b] || 0) + 1;
    tr.dirty = true;
  }

  function useCounts(counts, key) {
    tr.counts = counts;
    tr.countsKey = key;
    tr.countedAt = Date.now();
    tr.extra = {};
    Object.keys(counts.counts).forEach(function (s) {
      tr.extra[s] = {};
    });
    if (counts.range.live) {
      state.events.forEach(addLive); // what the socket brought since the count (the buffer holds the last minutes)
      tr.seq = state.feedSeq;
    }
    tr.dirty = true;
  }

  function askCounts(key) {
    tr.asking = key;
    // the range as the page's URL names it (26_range.js; the server resolves it again: a live range's edges move)
    fp.api("GET", "/api/events/counts?" + fp.range.query(window.location.search) + filterQuery()).then(function (res) {
      if (res.status === 200 && key === filterKey()) useCounts(res.body, key);
      // no answer: asked again after a pause, not on every flush
      setTimeout(function () {
        if (tr.asking === key) tr.asking = null;
      }, res.status === 200 ? 0 : RETRY_MS);
    });
  }

  function filterKey() {
    return (state.selected ? Array.from(state.selected).sort().join(",") : "*") + "|" + (state.types ? Array.from(state.types).sort().join(",") : "*");
  }

  // the bars: the server's counts plus the live ones, a bucket added on the right when time reaches it
  function series() {
    var c = tr.counts;
    var bucket = c.bucket_ms;
    var starts = c.starts.slice();
    var last = starts.length ? starts[starts.length - 1] : c.range.since - bucket;
    Object.keys(tr.extra).forEach(function (s) {
      Object.keys(tr.extra[s]).forEach(function (b) {
        while (Number(b) > last) starts.push((last += bucket));
      });
    });
    var at = {};
    starts.forEach(function (s, i) {
      at[s] = i;
    });
    var ys = {};
    Object.keys(c.counts).forEach(function (s) {
      var y = c.counts[s].concat(new Array(starts.length - c.counts[s].length).fill(0));
      Object.keys(tr.extra[s]).forEach(function (b) {
        y[at[b]] += tr.extra[s][b];
      });
      ys[s] = y;
    });
    return {starts: starts, ys: ys};
  }

  tr.series = series;

  function total(s, bucket) {
    var sum = 0;
    Object.keys(s.ys).forEach(function (k) {
      s.ys[k].forEach(function (v, i) {
        if (bucket === null || s.starts[i] === bucket) sum += v;
      });
    });
    return sum;
  }

  function draw(gd) {
    var s = series();
    var traces = gd.data.map(function (t) {
      return {x: s.starts, y: s.ys[t.meta] || [], customdata: s.starts};
    });
    var r = tr.counts.range;
    var end = Math.max(r.until, s.starts.length ? s.starts[s.starts.length - 1] + r.bucket_ms : r.until);
    fp.replaceTraces("tl-graph", gd, traces, {xaxis: Object.assign({}, gd.layout.xaxis, {range: [r.since, end], autorange: false})});
    tr.dirty = false;
    tr.drawnAt = Date.now();
    tr.rowsKey = null; // the count beside the table follows the bars
  }

  // ---- the table: a page of the range (or of one bucket) at a time ----

  function askPage() {
    var t = tr.table;
    var r = tr.counts.range;
    var since = t.bucket === null ? r.since : t.bucket;
    var until = t.bucket === null ? (r.live ? null : r.until) : t.bucket + r.bucket_ms;
    var cursor = t.cursors[t.cursors.length - 1];
    var url = "/api/events?floor=1&limit=" + PAGE + "&since=" + since + (until ? "&until=" + until : "") + filterQuery() + (cursor ? "&before=" + encodeURIComponent(cursor) : "");
    var ask = (t.asking = {});
    fp.api("GET", url).then(function (res) {
      if (t !== tr.table || t.asking !== ask) return; // a newer question was asked since
      t.asking = null;
      if (res.status !== 200) {
        fp.set("tl-count", {children: "could not load the events: " + ((res.body && res.body.error) || res.status)});
        return;
      }
      t.page = {events: res.body.events.map(fp.compact), next: res.body.next};
      tr.rowsKey = null;
    });
  }

  function newTable(bucket, page) {
    tr.table = {key: tr.countsKey, bucket: bucket, cursors: [null], page: page || null, asking: null};
    tr.rowsKey = null;
    if (!page) askPage();
  }

  function rowOf(c) {
    return Object.assign(fp.eventRow(c), {time: fp.tz.date(c[1]) + " " + fp.tz.time(c[1])});
  }

  function renderTable() {
    var t = tr.table;
    var key = [t.page ? t.page.events.length + "/" + t.cursors.length + "/" + (t.page.events[0] || [""])[0] : "…", t.bucket, fp.tz.rev, tr.drawnAt].join("|");
    if (key === tr.rowsKey) return;
    tr.rowsKey = key;
    var first = (t.cursors.length - 1) * PAGE;
    var s = series();
    var of = fp.fmt(total(s, t.bucket));
    var where = t.bucket === null ? "" : " between " + fp.tz.time(t.bucket, "min") + " and " + fp.tz.time(t.bucket + tr.counts.bucket_ms, "min") + " " + fp.tz.label();
    if (t.page) {
      fp.set("tl-table", {data: t.page.events.map(rowOf)}, true);
      var n = t.page.events.length;
      fp.set("tl-count", {children: (n ? "events " + fp.fmt(first + 1) + "–" + fp.fmt(first + n) + " of " + of : "no events") + where});
    } else fp.set("tl-count", {children: "loading…" + where});
    fp.set("tl-older", {disabled: !(t.page && t.page.next)});
    fp.set("tl-newer", {disabled: t.cursors.length <= 1});
    fp.set("tl-whole", {hidden: t.bucket === null});
  }

  function watchClicks(gd) {
    if (gd._fpRangeClicks || !gd.on) return;
    gd._fpRangeClicks = true;
    gd.on("plotly_click", function (ev) {
      var p = ev && ev.points && ev.points[0];
      if (!p || typeof p.customdata !== "number" || !tr.counts) return;
      newTable(p.customdata === (tr.table && tr.table.bucket) ? null : p.customdata); // a second click on it: the whole range
    });
  }

  fp.registerView({
    root: "tl-range-page",
    mount: function () {
      // the seed's callback (which resets the counts and the table) may run before or after this
      tr.dirty = true;
      tr.drawnAt = 0;
      tr.rowsKey = null;
    },
    update: function (now) {
      if (!tr.counts) return; // the seed's callback has not run yet
      var key = filterKey();
      var stale = key !== tr.countsKey || (tr.counts.range.live && now - tr.countedAt > RECOUNT_MS);
      if (stale && tr.asking !== key) askCounts(key);
      if (key !== tr.countsKey) return; // the bars and rows of another filter: wait for this one's
      if (tr.counts.range.live) {
        var feed = fp.feedSince(tr.seq);
        tr.seq = feed.head;
        feed.items.forEach(function (it) {
          addLive(it.e);
        });
      }
      if (!tr.table || tr.table.key !== key) newTable(tr.table ? tr.table.bucket : null);
      var gd = fp.graph("tl-graph");
      if (gd) {
        watchClicks(gd);
        if (tr.dirty && now - tr.drawnAt >= DRAW_MS) draw(gd);
      }
      renderTable();
    },
  });

  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.fp_timeline_range = {
    // the page's counts and first page for the whole floor and every type
    seed: function (data) {
      if (data && data.counts) {
        useCounts(data.counts, "*|*");
        newTable(null, {events: data.page.events, next: data.page.next});
      }
      return fp.ui.noUpdate();
    },
    // the pager: one page older, one newer, or back from a bar's bucket to the whole range
    page: function () {
      var t = tr.table;
      var fired = ((window.dash_clientside.callback_context || {}).triggered || []).map(function (x) {
        return x.prop_id;
      });
      if (!t || !tr.counts) return fp.ui.noUpdate();
      if (fired.indexOf("tl-older.n_clicks") >= 0 && t.page && t.page.next) t.cursors.push(t.page.next);
      else if (fired.indexOf("tl-newer.n_clicks") >= 0 && t.cursors.length > 1) t.cursors.pop();
      else if (fired.indexOf("tl-whole.n_clicks") >= 0 && t.bucket !== null) t = null;
      else return fp.ui.noUpdate();
      if (t === null) newTable(null);
      else {
        t.page = null;
        tr.rowsKey = null;
        askPage();
      }
      return fp.ui.noUpdate();
    },
  };
})();
