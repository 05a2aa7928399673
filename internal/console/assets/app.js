// otpscope console: every figure comes from /api/v1; nothing is computed here
// that the API does not say, so the console and the API cannot disagree.
'use strict';
(function () {
  const TOKEN_KEY = 'otpscope.apiToken';
  const $ = (sel) => document.querySelector(sel);
  const el = (tag, attrs, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null) continue;
      if (k === 'class') e.className = v; else if (k.startsWith('on')) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
    }
    for (const k of kids) e.append(k === null || k === undefined ? '' : k);
    return e;
  };
  // A channel keeps its colour whatever its rank: SMS, VOICE, VIBER,
  // WHATSAPP, SILENT, PUSH in turn, any other grey, as in the HTML
  // reports (internal/reporter/charts.go; a test holds them alike).
  // Okabe and Ito's palette, told apart with the common colour
  // blindnesses too.
  const COLORS = ['#0072b2', '#e69f00', '#cc79a7', '#009e73', '#d55e00', '#56b4e9', '#999999'];
  const CHANNELS = ['SMS', 'VOICE', 'VIBER', 'WHATSAPP', 'SILENT', 'PUSH'];
  const colorOf = (ch) => COLORS[CHANNELS.includes(ch) ? CHANNELS.indexOf(ch) : COLORS.length - 1];
  // As the reports write a rate (goFixed: an exact half to even, as Go).
  // A resend decision's result as read: the policy's dry run sent nothing.
  const resultName = (r) => r === 'dryrun' ? 'dry run (not sent)' : r;
  const fmtPct = (r) => (r === null || r === undefined) ? '–' : goFixed(r * 100, 1) + '%';
  // Under a second in ms; above, in seconds, as the alerts give them
  // ("38.2 s", not "38239 ms").
  const fmtMs = (ms) => (ms === null || ms === undefined) ? '–' : ms < 1000 ? String(Math.round(ms)) + ' ms' : (ms / 1e3).toFixed(1) + ' s';
  // ---- the time zone times are read in ----
  // UTC, or this browser's zone, as chosen in the window bar (kept in
  // localStorage: a reader's preference, not the window a link carries,
  // whose from and to are instants). The tables' times, the charts' axes
  // and their buckets (the API's tz: a day from local midnight) and the
  // custom window's pickers follow it.
  const BROWSER_TZ = (() => { try { return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC'; } catch (e) { return 'UTC'; } })();
  const TZ_KEY = 'otpscope.tz';
  let zone = localStorage.getItem(TZ_KEY) === BROWSER_TZ ? BROWSER_TZ : 'UTC';
  const wallFormats = {};
  // wallParts is the wall clock of zone at ms: year, month, day, hour,
  // minute, second.
  function wallParts(ms) {
    const f = wallFormats[zone] = wallFormats[zone] || new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23',
      year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
    const p = {};
    for (const x of f.formatToParts(new Date(ms))) p[x.type] = x.value;
    return [+p.year, +p.month, +p.day, +p.hour % 24, +p.minute, +p.second];
  }
  const pad2 = (n) => String(n).padStart(2, '0');
  // offsetAt is zone's offset from UTC at ms, in minutes.
  const offsetAt = (ms) => { const [y, mo, d, h, mi, s] = wallParts(ms); return (Date.UTC(y, mo - 1, d, h, mi, s) - Math.floor(ms / 1e3) * 1e3) / 6e4; };
  // wallString is ms on zone's clock as a picker holds it: 2026-06-01T09:30:00.
  const wallString = (ms) => { const [y, mo, d, h, mi, s] = wallParts(ms); return y + '-' + pad2(mo) + '-' + pad2(d) + 'T' + pad2(h) + ':' + pad2(mi) + ':' + pad2(s); };
  const fmtOffset = (m) => (m < 0 ? '-' : '+') + pad2(Math.floor(Math.abs(m) / 60)) + ':' + pad2(Math.abs(m) % 60);
  // A time as the tables show it: 2026-06-01 09:30:00Z in UTC, with the
  // offset elsewhere (2026-06-01 15:00:00+05:30), which also tells apart
  // the two readings of an hour the clocks repeat.
  const fmtTime = (s) => {
    if (!s) return '–';
    const ms = Date.parse(s);
    if (zone === 'UTC' || isNaN(ms)) return s.replace('T', ' ').replace(/(\.\d+)?Z$/, 'Z');
    return wallString(ms).replace('T', ' ') + fmtOffset(offsetAt(ms));
  };
  // fromWall is the instant a picker's value names on zone's clock (in a
  // skipped hour, as far past the jump; in a repeated one, the first).
  function fromWall(v) {
    const guess = Date.parse(v + 'Z');
    if (zone === 'UTC' || isNaN(guess)) return new Date(guess);
    const t = guess - offsetAt(guess) * 6e4;
    return new Date(guess - offsetAt(t) * 6e4);
  }
  // toWall is a picker's value for instant d.
  const toWall = (d) => zone === 'UTC' ? d.toISOString().slice(0, 19) : wallString(d.getTime());
  // goFixed is x to digits decimals as Go's strconv.FormatFloat(x, 'f',
  // digits, 64) writes it: an exact half (0.125 to two) to even, where
  // toFixed rounds it up. toFixed(100) has every digit of x (of our range).
  function goFixed(x, digits) {
    const up = x.toFixed(digits), all = x.toFixed(100), cut = all.indexOf('.') + 1 + digits;
    if (!(Math.abs(x) < 1e21) || !/^50*$/.test(all.slice(cut))) return up;
    const down = all.slice(0, cut).replace(/\.$/, '');
    return /[02468]$/.test(down) ? down : up;
  }
  // An alert's value or threshold as the reports and alert summaries write
  // it (reporter's alertFigure), with extra digits more: delivery_slow's are
  // milliseconds (a p95 time to deliver), in seconds to a tenth and under a
  // second in ms, as fmtMs; error_budget_burn's burn rates to a tenth,
  // "14.4×"; the other rules' rates as percentages.
  const alertFigure = (rule, v, extra) => rule === 'error_budget_burn' ? goFixed(v, 1 + extra) + '×' :
    rule !== 'delivery_slow' ? goFixed(100 * v, 1 + extra) + '%' :
    v < 1000 ? (extra ? goFixed(v, extra) : String(Math.round(v))) + ' ms' : (extra ? goFixed(v / 1e3, 1 + extra) : (v / 1e3).toFixed(1)) + ' s';
  // alertFigures are an alert's value and threshold, the value never
  // reading as its threshold: 10040 ms above 10 s is "10.04 s", not
  // "10.0 s", taking the fewest digits more (up to six) at which the two
  // differ. reporter.AlertFigures, ported: the console says what the
  // summary beside it says (a test holds the two alike).
  function alertFigures(rule, value, threshold) {
    const t = alertFigure(rule, threshold, 0);
    for (let extra = 0; ; extra++) {
      const v = alertFigure(rule, value, extra);
      if (extra === 6 || value === threshold || v !== alertFigure(rule, threshold, extra)) return [v, t];
    }
  }
  const fmtSpan = (ms) => ms < 60e3 ? Math.max(0, Math.round(ms / 1e3)) + ' s' : ms % 3600e3 === 0 ? (ms / 3600e3) + ' h' : Math.round(ms / 60e3) + ' min';

  class AuthError extends Error {}

  // A load that has not answered in this long fails as one that could not
  // connect: a server that hangs must not leave its last figures looking
  // current. (Live's stream has no such bound.)
  const LOAD_TIMEOUT_MS = 30e3;

  // A 429 says every place for analytics queries (--api-queries) is taken,
  // by another tab or operator: the request is asked again after its
  // Retry-After (at most BUSY_WAIT_S), up to BUSY_RETRIES times, the page
  // saying that it waits, rather than a busy moment failing the figures.
  const BUSY_RETRIES = 3, BUSY_WAIT_S = 5;

  // api fetches path with the token, if any; a 401 asks for one. opts.signal
  // aborts it; opts.timeout bounds it, its waits on a 429 included;
  // opts.once takes a 429 as the answer, not asking again.
  async function api(path, opts) {
    opts = Object.assign({}, opts);
    if (opts.timeout) opts.signal = AbortSignal.any([opts.signal || new AbortController().signal, AbortSignal.timeout(opts.timeout)]);
    const headers = Object.assign({ 'Accept': 'application/json' }, opts.headers);
    const tok = sessionStorage.getItem(TOKEN_KEY);
    if (tok) headers['Authorization'] = 'Bearer ' + tok;
    opts.headers = headers;
    let res;
    for (let retry = 0; ; retry++) {
      res = await fetch(path, opts);
      if (res.status !== 429 || retry === BUSY_RETRIES || opts.once) break;
      await busyWait(Math.min(Math.max(Number(res.headers.get('Retry-After')) || 1, 1), BUSY_WAIT_S), opts.signal);
    }
    if (res.status === 401) {
      // A refused token is of no further use: dropped, so that the form
      // asks for another rather than offer to forget it.
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin(tok ? 'The token was refused.' : '');
      throw new AuthError('unauthorized');
    }
    if (!res.ok) {
      let detail = res.status + ' ' + res.statusText;
      try { const p = await res.json(); detail = (p.title || '') + (p.detail ? ': ' + p.detail : ''); } catch (e) { /* not problem+json */ }
      throw Object.assign(new Error(detail), { status: res.status });
    }
    return opts.raw ? res : res.json();
  }

  // busyWait waits s seconds, or until signal aborts, saying so while any
  // request waits.
  let busyWaits = 0;
  async function busyWait(s, signal) {
    busyWaits++;
    $('#busy').textContent = 'otpscope is busy (too many analytics queries at once): asking again in ' + s + ' s…';
    $('#busy').hidden = false;
    try {
      await new Promise((resolve, reject) => {
        if (signal && signal.aborted) return reject(signal.reason);
        const t = setTimeout(resolve, s * 1e3);
        if (signal) signal.addEventListener('abort', () => { clearTimeout(t); reject(signal.reason); }, { once: true });
      });
    } finally {
      if (--busyWaits === 0) $('#busy').hidden = true;
    }
  }

  function showError(err) {
    if (err instanceof AuthError) return;
    const box = $('#error'), msg = String(err && err.message || err);
    // Written only when it changes: a screen reader announces every write.
    if (box.hidden || box.textContent !== msg) box.textContent = msg;
    box.hidden = false;
  }
  // replaceIfChanged gives node the children kids unless it has the same
  // already: a refresh every 5 s must not announce a live region again, nor
  // take a link from under the keyboard.
  function replaceIfChanged(node, ...kids) {
    const next = el('div', {}, ...kids);
    // The cells' names (labelCells) are set after a change: not one.
    const bare = (html) => html.replace(/ data-label="[^"]*"/g, '');
    if (bare(next.innerHTML) === bare(node.innerHTML)) return;
    if (next.textContent === node.textContent && next.children.length === node.children.length) {
      // The same words: what else changed (a tooltip's time of evaluation)
      // changes in place, unannounced.
      [...next.children].forEach((c, i) => { for (const a of c.attributes) node.children[i].setAttribute(a.name, a.value); });
      return;
    }
    node.replaceChildren(...next.childNodes);
  }
  // replaceRows gives tbody the rows, what the reader had kept: a control
  // focused in a row (by its class, or its tag: a summary) is focused again
  // in the row with the same key (a data- attribute), or, when that row or
  // control is gone or disabled (a dead letter replayed or deleted),
  // fallback, which says what happened; a row's disclosure opened stays
  // open (the 5 s refresh closed "+N more" under its reader).
  function replaceRows(tbody, key, fallback, rows) {
    const f = document.activeElement, tr = f && f !== tbody && tbody.contains(f) ? f.closest('tr') : null;
    const was = tr && { key: tr.dataset[key], sel: f.classList[0] ? '.' + f.classList[0] : f.tagName.toLowerCase() };
    const open = new Set([...tbody.querySelectorAll('details[open]')].map((d) => d.closest('tr').dataset[key]));
    tbody.replaceChildren(...rows);
    for (const r of tbody.rows) {
      const d = open.has(r.dataset[key]) && r.querySelector('details');
      if (d) d.open = true;
    }
    if (!was) return;
    const again = [...tbody.rows].find((r) => r.dataset[key] === was.key);
    const c = again && again.querySelector(was.sel);
    (c && !c.disabled ? c : fallback).focus();
  }
  // focusPage puts the keyboard at the shown page's heading, where a
  // navigation or sign-in leaves the reader: the page's controls come next.
  const focusPage = () => { const h = $('#page-' + page().name + ' h2'); if (h) h.focus(); };
  function clearError() { $('#error').hidden = true; }

  // After a failed load the figures of the last good one stay, greyed and
  // said to be old: an error beside figures that look current would read
  // as if they were the answer. A fetch that fails outright (a TypeError:
  // the server is down or unreachable) says since when.
  let unreachableSince = null;
  function showStale(err, section) {
    if (err instanceof AuthError) return;
    const main = document.querySelector('main');
    const had = section.dataset.shown;
    main.classList.add('stale');
    let msg = String(err && err.message || err).replace(/([^.])$/, '$1.');
    if (unreachable(err)) msg = notAnswering(err.name === 'TimeoutError' ? 'no answer within ' + fmtSpan(LOAD_TIMEOUT_MS) : err.message);
    showError(msg + (had ? ' The figures below are those of ' + had + ', from before.' : ''));
    // Not known to be final any more: a fixed window is not read again for
    // it (an unreachable otpscope is, below).
    section.dataset.final = '';
  }
  // notAnswering says since when otpscope has not answered, and why.
  function notAnswering(why) {
    unreachableSince = unreachableSince || isoSec(new Date());
    return 'otpscope is not answering since ' + fmtTime(unreachableSince) + ' (' + why + '); retrying every 5 s.';
  }
  // unreachable: a fetch that could not connect (a TypeError) or got no
  // answer in time, as opposed to an answer refusing the request.
  const unreachable = (err) => err instanceof TypeError || (err && err.name === 'TimeoutError');
  // showFresh marks the section's figures current; warning, if any, is
  // what the error line says (kept as it is when unchanged: a role=alert
  // written again every 5 s is announced again).
  function showFresh(section, w, final, warning) {
    unreachableSince = null;
    document.querySelector('main').classList.remove('stale');
    section.dataset.shown = w ? fmtTime(w.from) + ' … ' + fmtTime(w.to) + (w.channel ? ', channel ' + w.channel : '') + (w.profile ? ', profile ' + w.profile : '') : 'the last good load';
    section.dataset.window = w ? JSON.stringify({ from: w.from, to: w.to, asOf: w.asOf }) : '';
    section.dataset.final = final === undefined ? '' : String(final);
    if (warning) showError(warning); else clearError();
  }

  function showLogin(msg) {
    $('#login').hidden = false;
    $('#logout').hidden = true;
    $('#window').hidden = true;
    document.querySelector('main').hidden = true;
    clearError();
    // In the form, where the eye is.
    $('#login-msg').textContent = msg;
    $('#login-msg').hidden = !msg;
    $('#token').focus();
  }
  $('#login').addEventListener('submit', (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $('#token').value.trim());
    $('#token').value = '';
    $('#login').hidden = true;
    $('#logout').hidden = false;
    $('#window').hidden = false;
    document.querySelector('main').hidden = false;
    clearError();
    route();
    focusPage();
  });
  $('#logout').hidden = !sessionStorage.getItem(TOKEN_KEY);
  $('#logout').addEventListener('click', () => { sessionStorage.removeItem(TOKEN_KEY); location.reload(); });

  // ---- the window every page reads ----
  const RANGES = { '1h': 3600e3, '24h': 86400e3, '7d': 7 * 86400e3 };
  const isoSec = (d) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');
  function currentWindow() {
    const range = $('#range').value;
    let from, to;
    if (range === 'custom') {
      from = fromWall($('#from').value);
      to = fromWall($('#to').value);
      if (isNaN(from) || isNaN(to)) throw new Error('custom window: set from and to');
    } else {
      to = new Date(Math.floor(Date.now() / 1000) * 1000);
      from = new Date(to.getTime() - RANGES[range]);
    }
    const w = { from: isoSec(from), to: isoSec(to) };
    const ch = applied('#channel'), pr = applied('#profile');
    if (ch) w.channel = ch;
    if (pr) w.profile = pr;
    return w;
  }
  // A filter is read as applied (Enter, or leaving the field: its change),
  // not as it is being typed: a refresh every 5 s read "SM" of "SMS" and
  // showed a window of nothing under a reader mid-word.
  const apply = (id) => { const e = $(id); if (e.type === 'text' || e.type === '') e.dataset.applied = e.value.trim(); };
  const applied = (id) => $(id).dataset.applied || '';
  apply('#channel'); // what a reload's form holds, as the page starts
  apply('#profile');
  // showWindow labels the figures with the window they answer for, once
  // they are drawn: the label never names a window whose answer is not
  // on the page. w.asOf, when the answer gave one, is its as_of: every fact
  // stored before it is counted (maxLag's reads: the rollup job's last run).
  function showWindow(w) {
    const shown = $('#shown');
    shown.textContent = w ? fmtTime(w.from) + ' … ' + fmtTime(w.to) : '';
    shown.dataset.from = w ? w.from : '';
    shown.dataset.to = w ? w.to : '';
    const readAt = $('#read-at');
    readAt.textContent = w && w.asOf ? 'as of ' + fmtTime(w.asOf).slice(11) : '';
    readAt.dataset.asOf = w && w.asOf ? w.asOf : '';
  }
  // The picker's name for window w: what the operator chose.
  const windowLabel = (w) => ($('#range').value === 'custom' ? fmtTime(w.from) + ' … ' + fmtTime(w.to) : $('#range').selectedOptions[0].text) +
    (w.channel ? ', channel ' + w.channel : '') + (w.profile ? ', profile ' + w.profile : '');
  // showLoading greys the figures on the page, another window's or filter's,
  // until the answer for w is drawn, and says what is coming: the window,
  // or on a page without one (Dead letters, Backups) the page. It sits
  // above the page, not in the window bar, which those pages hide.
  function showLoading(w, section) {
    document.querySelector('main').classList.add('loading');
    document.querySelector('main').setAttribute('aria-busy', 'true');
    $('#loading').textContent = 'loading ' + (w ? windowLabel(w) : section.querySelector('h2').textContent.toLowerCase()) + '…';
    $('#loading').hidden = false;
  }
  function hideLoading() {
    document.querySelector('main').classList.remove('loading');
    document.querySelector('main').removeAttribute('aria-busy');
    $('#loading').hidden = true;
  }
  const qs = (o) => new URLSearchParams(Object.entries(o).filter(([, v]) => v !== '' && v !== undefined && v !== null)).toString();
  // The analytics reads a page repeats every 5 s take the hours as the
  // rollup job last left them, up to config.json's maxLag behind (as of
  // its last run, a minute by default), rather than recompute at each
  // refresh the OTPs touched since: a few times cheaper for the engine
  // (README, "The console"). '' (no job): exact.
  let maxLag = '';
  const lagged = (w) => Object.assign({ max_lag: maxLag }, w);
  $('#range').addEventListener('change', () => {
    const custom = $('#range').value === 'custom';
    $('#custom').hidden = !custom;
    if (custom && !$('#from').value) {
      const to = new Date(), from = new Date(to.getTime() - 86400e3);
      $('#from').value = toWall(from);
      $('#to').value = toWall(to);
    }
    firstEventsPage();
    refresh();
  });
  $('#refresh').addEventListener('click', () => { firstEventsPage(); refresh(); });
  // The zone select: UTC, and this browser's zone when it is another.
  if (BROWSER_TZ !== 'UTC' && BROWSER_TZ !== 'Etc/UTC') $('#tz').append(el('option', { value: BROWSER_TZ, title: "this browser's zone" }, BROWSER_TZ));
  $('#tz').value = zone;
  $('#utc').textContent = zone;
  $('#tz').addEventListener('change', () => {
    // The custom window keeps its instants: its pickers are read on the
    // old zone's clock and written on the new one's.
    const from = fromWall($('#from').value), to = fromWall($('#to').value);
    zone = $('#tz').value || 'UTC';
    localStorage.setItem(TZ_KEY, zone);
    if (!isNaN(from)) $('#from').value = toWall(from);
    if (!isNaN(to)) $('#to').value = toWall(to);
    $('#utc').textContent = zone;
    refresh();
  });
  // Another window or filter starts the events over at their first page: a
  // cursor belongs to the window it was read in.
  for (const id of ['#channel', '#profile', '#from', '#to']) $(id).addEventListener('change', () => { apply(id); firstEventsPage(); refresh(); });

  // ---- the window in the URL ----
  // The window and filters are mirrored in the hash's query
  // (#overview?range=custom&from=…&to=…&channel=SMS): a reload keeps
  // them and a link carries them. Only the windowed pages carry one.
  function formQuery() {
    const custom = $('#range').value === 'custom';
    // As the window reads it: the input drops a time's :00 seconds.
    const utc = (id) => { const d = fromWall($(id).value); return custom && !isNaN(d) ? isoSec(d) : ''; };
    // ':' needs no escaping in a fragment, and a link reads better without.
    return qs({ range: $('#range').value, from: utc('#from'), to: utc('#to'), channel: applied('#channel'), profile: applied('#profile') })
      .replace(/%3A/g, ':');
  }
  // A page's own filters ride beside the window's: the Events page's
  // status, source, OTP and page size (50 left out), the Dead letters
  // page's "only never replayed".
  const EVENT_FILTERS = { status: '#ev-status', source: '#ev-source', otp: '#ev-otp', limit: '#ev-limit' };
  const EVENTS_LIMIT = '50';
  function pageQuery(name) {
    const q = {};
    if (name === 'events') {
      for (const [k, id] of Object.entries(EVENT_FILTERS)) {
        const v = $(id).value.trim();
        if (!(k === 'limit' && v === EVENTS_LIMIT)) q[k] = v;
      }
    }
    if (name === 'deadletters' && $('#dl-pending').checked) q.pending = 'true';
    return qs(q);
  }
  // hashFor is the hash page name is shown at: its window, its filters.
  function hashFor(name) {
    const q = [name in WINDOWED ? formQuery() : '', pageQuery(name)].filter((x) => x).join('&');
    return '#' + name + (q ? '?' + q : '');
  }
  // formFromHash sets the form from the hash's query, when it has one (a
  // key it lacks to its default; a nav link's bare #page leaves the form
  // as it is), and says whether the form changed.
  function formFromHash() {
    const i = location.hash.indexOf('?');
    if (i < 0) return false;
    const q = new URLSearchParams(location.hash.slice(i + 1));
    const name = page().name;
    const before = formQuery() + pageQuery(name);
    if (name === 'events') for (const [k, id] of Object.entries(EVENT_FILTERS)) $(id).value = q.get(k) || (k === 'limit' ? EVENTS_LIMIT : '');
    if (name === 'deadletters') $('#dl-pending').checked = q.get('pending') === 'true';
    const range = q.get('range') || '1h';
    $('#range').value = range in RANGES || range === 'custom' ? range : '1h';
    // An instant (with its Z or offset) shown on zone's clock; anything
    // else as it came, for the window to refuse.
    const local = (s) => {
      s = s || '';
      const d = /(Z|[+-]\d\d:?\d\d)$/i.test(s) ? new Date(s) : new Date(NaN);
      return isNaN(d) ? s.replace(/(\.\d+)?Z$/, '') : toWall(d);
    };
    if ($('#range').value === 'custom') { $('#from').value = local(q.get('from')); $('#to').value = local(q.get('to')); }
    $('#custom').hidden = $('#range').value !== 'custom';
    $('#channel').value = q.get('channel') || '';
    $('#profile').value = q.get('profile') || '';
    apply('#channel');
    apply('#profile');
    return formQuery() + pageQuery(name) !== before;
  }

  // ---- Overview ----
  // Charts are kept across refreshes and given the new data when their
  // series are the same (a reader's cursor and legend stay where they
  // are), drawn anew when they are not. Times are on zone's clock,
  // 24-hour, like the tables'.
  const charts = {};
  const axisTimes = (u, splits, ax, space, incr) => splits.map((t) => {
    const [, mo, d, h, mi, s] = wallParts(t * 1e3), hm = pad2(h) + ':' + pad2(mi);
    return incr >= 86400 ? pad2(mo) + '-' + pad2(d) : incr < 60 ? hm + ':' + pad2(s) : hm;
  });
  function chart(id, ts, pick, opts) {
    const host = $('#' + id);
    chartTable(id, ts, opts.table || pick, opts);
    const x = ts.start.map((s) => Date.parse(s) / 1000);
    const series = [{ label: zone, value: (u, t) => t === null || t === undefined ? '–' : fmtTime(isoSec(new Date(t * 1e3))) }];
    const data = [x];
    // By name, not by rank: two channels trading places would otherwise
    // swap colours and draw every chart anew.
    // A line that goes with its channel's first (pick's fifth: 'gaps', the
    // partial buckets that line leaves out; 'pair', its p95 beside its
    // p50, or its figure in the window before) has no legend row of its
    // own: the first line's row shows its figure (where it has none, that
    // of the gaps' line; then each pair's: "2.0 s / 3.0 s") and hides and
    // shows them all. A faint one (pick's sixth: the window before's) is
    // drawn thin and paler.
    const follow = {};
    const fmt = (v) => v === null || v === undefined ? '–' : (opts.fmt ? opts.fmt(v) : v);
    const at = (u, of, kind, di) => (follow[of] || []).filter((f) => f.kind === kind).map((f) => di === null || di === undefined ? null : u.data[f.i][di]);
    [...ts.channels].sort((a, b) => a.channel.localeCompare(b.channel)).forEach((c) => {
      let first;
      for (const [label, values, dash, points, goesWith, faint] of pick(c)) {
        const i = series.length;
        if (goesWith) (follow[first] = follow[first] || []).push({ i: i, kind: goesWith });
        else first = i;
        series.push({ label: label, stroke: colorOf(c.channel) + (faint ? '99' : ''), width: faint ? 1 : 2, dash: dash, spanGaps: false, points: points || { show: true, size: 4 },
          value: (u, v, si, di) => {
            const own = v === null || v === undefined ? at(u, i, 'gaps', di).find((g) => g !== null && g !== undefined) : v;
            return [own, ...at(u, i, 'pair', di)].map(fmt).join(' / ');
          } });
        data.push(values.map((v) => v === null ? null : v));
      }
    });
    // opts.key: what else the series were drawn with (their points').
    const key = series.map((s) => s.label).join('|') + (opts.key || '');
    const old = charts[id];
    if (old && old.key === key) { old.u.setData(data); fitChart(old); return; }
    if (old) { old.u.destroy(); delete charts[id]; }
    if (series.length === 1) { host.replaceChildren(el('p', { class: 'hint' }, 'no data in this window')); return; }
    host.replaceChildren();
    const u = new uPlot({ width: chartWidth(host), height: 220, series: series,
      tzDate: (t) => uPlot.tzDate(new Date(t * 1e3), zone === 'UTC' ? 'Etc/UTC' : zone),
      scales: { x: { time: true }, y: opts.range ? { range: opts.range } : {} },
      axes: [{ values: axisTimes, space: 70 }, { values: (u, vals) => vals.map((v) => opts.fmt ? opts.fmt(v) : v), size: 60 }],
      hooks: { setSeries: [(u, i, o) => { if (o && o.show !== undefined) for (const f of follow[i] || []) u.setSeries(f.i, { show: o.show }); }] } }, data, host);
    const rows = u.root.querySelectorAll('.u-legend .u-series');
    for (const f of Object.values(follow).flat()) { rows[f.i].hidden = true; rows[f.i].dataset.continues = 'true'; }
    // The figures are the table's to read (chartTable): the canvas and its
    // hover legend are left out of what a screen reader reads.
    u.root.setAttribute('aria-hidden', 'true');
    charts[id] = { u: u, key: key, host: host };
  }
  // Every chart's figures as a table, on demand: what a screen reader, or
  // anyone after the numbers, reads in place of the lines. A row a bucket,
  // a column a line, the bucket's start on zone's clock; one only partly
  // counted says so.
  const chartTables = {};
  function chartTable(id, ts, pick, opts) {
    const cols = [];
    [...ts.channels].sort((a, b) => a.channel.localeCompare(b.channel)).forEach((c) => { for (const [label, values] of pick(c)) cols.push([label, values]); });
    const partial = opts.partial || [];
    chartTables[id] = cols.length ? el('table', {}, el('caption', { class: 'visually-hidden' }, $('#' + id).closest('figure').querySelector('figcaption').textContent),
      el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'bucket (' + zone + ')'), ...cols.map(([label]) => el('th', { scope: 'col', class: 'num' }, label)))),
      el('tbody', {}, ...ts.start.map((s, i) => el('tr', {}, el('th', { scope: 'row' }, fmtTime(s) + (partial[i] ? ' (partial)' : '')),
        ...cols.map(([, values]) => el('td', { class: 'num' }, values[i] === null || values[i] === undefined ? '–' : opts.cell(values[i]))))))) : null;
    // On a phone, a card a bucket, each figure named by its line.
    if (chartTables[id]) labelCells(chartTables[id]);
    showChartTable(id);
  }
  // showChartTable shows chart id's table, if open, or msg (why there is
  // none), kept for when it is opened; a refresh that changes nothing
  // leaves it as it is, a screen reader's place in it too.
  function showChartTable(id, msg) {
    const box = $('#' + id + '-data');
    if (msg !== undefined) chartTables[id] = el('p', { class: 'hint' }, msg);
    if (!box.hidden) replaceIfChanged(box, chartTables[id] || el('p', { class: 'hint' }, 'no data in this window'));
  }
  const chartWidth = (host) => Math.max(260, host.clientWidth || 520);
  // fitChart sizes a chart to its figure, once the figure is shown (a
  // hidden page's has no width).
  function fitChart(c) {
    if (c.host.clientWidth && c.u.width !== chartWidth(c.host)) c.u.setSize({ width: chartWidth(c.host), height: 220 });
  }
  window.addEventListener('resize', () => { for (const c of Object.values(charts)) fitChart(c); });

  // The window before w, as long as it and ending where it starts, with
  // its filters: what the Overview sets beside w's delivery and fallback
  // rates, so that a rate reads against its own recent past.
  const API_EARLIEST = Date.UTC(2000, 0, 1); // the API's windows start no earlier
  function windowBefore(w) {
    const from = Date.parse(w.from), span = Date.parse(w.to) - from;
    return Object.assign({}, w, { from: isoSec(new Date(from - span)), to: w.from });
  }
  // Its name: the picker's hour, day or week, else its length.
  const BEFORE = { '1h': 'the hour before', '24h': 'the day before', '7d': 'the week before' };
  const beforeName = (w) => BEFORE[$('#range').value] || 'the ' + fmtSpan(Date.parse(w.to) - Date.parse(w.from)) + ' before';

  // The window before's series, kept while the window's buckets stay
  // where they were (its first bucket's start, their count, step, zone
  // and filters): its figures move only as the buckets do, so a refresh
  // every 5 s reads it again once a minute for the last hour, once an hour
  // for the last 24 h, rather than every time (the faint lines' note says
  // which window they are of). A failed read is not kept.
  let priorSeries = { key: '', answer: null };
  // The alert rules in force (/api/v1/alerts/rules) are the reporter's
  // flags, fixed while it runs: read once, and again only after a failed
  // read.
  let rulesInForce = null;
  // The objective's figures (/api/v1/slo) are of the SLO window ending
  // now, whatever window is shown: weeks, which a minute hardly moves.
  // Read at most once a minute; a failed read is not kept.
  let sloRead = { at: 0, answer: null };
  const SLO_EVERY_MS = 60e3;

  // Each page's load reads its answers for window w and returns what draws
  // them; refresh draws only the newest load's. A draw may return what its
  // answers said of themselves: asOf (the oldest as_of), final (nothing in
  // the window can still settle) and a warning.
  async function overview(w, signal) {
    const get = (path) => api(path, { signal: signal, timeout: LOAD_TIMEOUT_MS });
    const change = silencesChange;
    const before = windowBefore(w);
    const got = await Promise.allSettled([
      get('/api/v1/channels?' + qs(lagged(w))),
      get('/api/v1/fallback?' + qs(lagged(w))),
      get('/api/v1/timeseries?' + qs(Object.assign(lagged(w), zone === 'UTC' ? {} : { tz: zone }))),
      get('/api/v1/alerts/episodes?' + qs(Object.assign({}, w, { profile: undefined }))), // over every profile
      get('/api/v1/alerts/firing'),
      get('/api/v1/status'),
    ]);
    // No answer for the window (otpscope down, the window refused): the
    // load fails as a whole and the last one's figures stay, greyed.
    if (got.slice(0, 4).every((r) => r.status === 'rejected')) throw got[0].reason;
    // Then the window before's, once those are answered: the four reads of
    // ClickHouse above are what --api-queries answers at once by default.
    // Its series in the window's step, for the delivery-rate chart's
    // faint lines; none when the window's did not load. Read again only
    // when the window's buckets move (priorSeries). One starting before
    // 2000 is not asked: the API refuses it (400), which is how it is
    // drawn, and the browser would log each refusal as a failed request.
    const cut = got[2].status === 'fulfilled' ? got[2].value : null;
    const key = cut ? [zone, cut.step_seconds, cut.start[0], cut.start.length, w.channel, w.profile].join('|') : '';
    const getBefore = Date.parse(before.from) < API_EARLIEST ? () => Promise.reject(Object.assign(new Error('a window before 2000'), { status: 400 })) : get;
    got.push(...await Promise.allSettled([
      getBefore('/api/v1/channels?' + qs(lagged(before))),
      getBefore('/api/v1/fallback?' + qs(lagged(before))),
      !cut ? null : priorSeries.key === key ? priorSeries.answer
        : getBefore('/api/v1/timeseries?' + qs(Object.assign(lagged(before), { step: String(cut.step_seconds) }, zone === 'UTC' ? {} : { tz: zone }))),
      rulesInForce || get('/api/v1/alerts/rules'),
      Date.now() - sloRead.at < SLO_EVERY_MS ? sloRead.answer : get('/api/v1/slo?' + qs(lagged({}))),
      get('/api/v1/alerts/silences'),
    ]));
    if (got[8].status === 'fulfilled' && got[8].value) priorSeries = { key: key, answer: got[8].value };
    if (got[9].status === 'fulfilled') rulesInForce = got[9].value;
    if (got[10].status === 'fulfilled' && got[10].value !== sloRead.answer) sloRead = { at: Date.now(), answer: got[10].value };
    const auth = got.find((r) => r.reason instanceof AuthError);
    if (auth) throw auth.reason;
    // One part failing (the alerts' state when NATS is down) leaves the
    // others to be drawn: each is given its answer or its error.
    const [chs, fb, ts, al, now, st, chsBefore, fbBefore, tsBefore, rules, slo, silences] = got.map((r) => r.status === 'fulfilled' ? r.value : r.reason);
    return () => drawOverview(w, chs, fb, ts, al, now, st, { w: before, name: beforeName(w), chs: chsBefore, fb: fbBefore, ts: tsBefore }, rules, slo, { answer: silences, change: change });
  }
  const CHART_IDS = ['chart-rate', 'chart-attempts', 'chart-latency', 'chart-fallback'];
  for (const id of CHART_IDS) {
    const caption = $('#' + id).closest('figure').querySelector('figcaption');
    caption.id = caption.id || id + '-caption';
    const box = el('div', { id: id + '-data', class: 'chart-data', hidden: '', tabindex: '0', role: 'region', 'aria-labelledby': caption.id });
    const toggle = el('button', { type: 'button', class: 'chart-data-toggle', 'aria-expanded': 'false', 'aria-controls': box.id, 'aria-describedby': caption.id }, 'Show as a table');
    toggle.addEventListener('click', () => {
      box.hidden = !box.hidden;
      toggle.setAttribute('aria-expanded', String(!box.hidden));
      toggle.textContent = box.hidden ? 'Show as a table' : 'Hide the table';
      showChartTable(id);
    });
    $('#' + id).after(toggle, box);
  }
  function drawOverview(w, chs, fb, ts, al, now, st, before, rules, slo, silences) {
    const failed = [];
    // part draws a part from its answer or, when that failed, says so in
    // its place: an older window's figures must not stay under this one's.
    const part = (name, answer, draw, fail) => {
      if (!(answer instanceof Error)) return draw(answer);
      failed.push(name + ' (' + answer.message + ')');
      fail('not loaded: ' + answer.message);
    };
    const rowSaying = (tbody, cols, msg) => $(tbody).replaceChildren(el('tr', { class: 'failed' }, el('td', { colspan: cols, class: 'hint' }, msg)));
    part('the pipeline status', st, pipeline, (msg) => {
      delete $('#pipeline').dataset.streamMessages;
      $('#pipeline').replaceChildren('Pipeline: ' + msg);
      $('#dead-letters').hidden = true;
    });
    part('the alert rules firing now', now, drawFiring, (msg) => {
      const f = $('#firing');
      delete f.dataset.count;
      f.className = 'state-firing';
      replaceIfChanged(f, 'Alert rules firing now: ' + msg);
      replaceIfChanged($('#firing-live'), 'Alert rules firing now: ' + msg);
    });
    part('the objective', slo, drawSLO, (msg) => {
      const p = $('#slo');
      delete p.dataset.remaining;
      p.className = 'state-firing';
      p.hidden = false;
      replaceIfChanged(p, 'Objective: ' + msg);
    });
    // The window before is a part of its own: when it did not load its
    // rates say so, and w's are drawn. One the API refuses (400: before
    // the earliest time it reads) is no failure: there is none to read.
    for (const [name, answer] of [['the channels', before.chs], ['the journeys', before.fb], ['the delivery rates', before.ts]]) {
      if (answer instanceof Error && answer.status !== 400) failed.push(name + ' of ' + before.name + ' (' + answer.message + ')');
    }
    $('#rate-before').textContent = before.name;
    part('the channels', chs, (a) => drawChannels(a, before), (msg) => {
      rowSaying('#channels tbody', 11, msg);
      delete $('#completeness').dataset.pending;
      $('#completeness').textContent = '';
    });
    labelCells($('#channels')); // its heading for the window before may have changed, its rows not
    part('the journeys', fb, (a) => drawFallbackSummary(a, w.channel, before), (msg) => {
      const s = $('#fallback-summary');
      delete s.dataset.otps;
      delete s.dataset.fallbackRate;
      s.textContent = 'Journeys: ' + msg;
    });
    // An alert is over every profile: a profile filter does not narrow them.
    $('#alerts-profile').hidden = !w.profile;
    part('the alerts in this window', al, drawEpisodes, (msg) => rowSaying('#alerts tbody', 9, msg));
    part('the alert rules in force', rules, drawRules, (msg) => {
      $('#alert-rules-says').textContent = 'The rules in force: ' + msg;
      $('#alert-rules-list').replaceChildren();
    });
    // Not when a silence was added or ended since they were asked: the
    // list read after the change is newer than this one.
    if (silences.change === silencesChange) part('the silences', silences.answer, (a) => drawSilences(a.silences), silencesNotLoaded);
    part('the charts', ts, (a) => drawCharts(a, before), (msg) => {
      $('#attempts-caption').textContent = 'Attempts';
      $('#attempts-partial').hidden = true;
      $('#rate-before-note').hidden = $('#attempts-before-note').hidden = $('#fallback-before-note').hidden = true;
      delete $('#chart-attempts').dataset.partial;
      for (const id of CHART_IDS) {
        if (charts[id]) { charts[id].u.destroy(); delete charts[id]; }
        $('#' + id).replaceChildren(el('p', { class: 'hint' }, msg));
        showChartTable(id, msg);
      }
    });
    $('#page-overview').dataset.loaded = w.from + '/' + w.to;
    const asOfs = [chs, fb, ts].filter((a) => !(a instanceof Error)).map((a) => a.as_of);
    return {
      asOf: asOfs.sort((a, b) => Date.parse(a) - Date.parse(b))[0],
      final: !failed.length && settled(chs.completeness) && settled(fb.completeness),
      warning: failed.length ? 'Part of the overview did not load: ' + failed.join('; ') + '. The rest is drawn.' : '',
    };
  }
  // saveReport saves the report of the window shown (GET /api/v1/report,
  // what `reporter report` writes) in format, on the zone times are read
  // in, under the name the answer gives: fetched with the token, which a
  // plain link would not send. It reads exactly, so it may count facts
  // stored after the figures' as of.
  async function saveReport(format) {
    const shown = $('#shown').dataset, status = $('#report-status');
    if (!shown.from) { status.textContent = 'no window shown yet'; return; }
    const q = qs({ from: shown.from, to: shown.to, profile: applied('#profile'), channel: applied('#channel'), tz: zone === 'UTC' ? '' : zone, format: format });
    status.textContent = 'making the report of ' + fmtTime(shown.from) + ' … ' + fmtTime(shown.to) + '…';
    try {
      const res = await api('/api/v1/report?' + q, { raw: true, timeout: LOAD_TIMEOUT_MS, headers: { 'Accept': '*/*' } });
      const name = (/filename="([^"]+)"/.exec(res.headers.get('Content-Disposition') || '') || [])[1] || 'otpscope-report';
      const url = URL.createObjectURL(await res.blob());
      const a = el('a', { href: url, download: name, hidden: '' });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60e3);
      status.textContent = 'saved ' + name;
    } catch (err) {
      if (!(err instanceof AuthError)) status.textContent = 'the report did not come: ' + (unreachable(err) ? 'otpscope did not answer' : err.message);
    }
  }
  for (const b of document.querySelectorAll('#report button')) b.addEventListener('click', () => saveReport(b.dataset.format));

  // drawRules lists the alert rules in force, each in the reporter's
  // words, those off greyed; above them when and over what they are
  // evaluated, and who hears.
  function drawRules(r) {
    $('#alert-rules-says').textContent = r.says;
    // Nowhere to send a test alert: the button says so rather than fail.
    $('#alert-test').disabled = nowhereToSend();
    $('#alert-test').title = nowhereToSend() ? 'the reporter has no --alert-webhook-url and no --alertmanager-url' : 'to the webhook and every Alertmanager, marked a test';
    replaceIfChanged($('#alert-rules-list'), ...r.rules.map((x) => el('li', { 'data-rule': x.rule, 'data-on': String(x.on), class: x.on ? '' : 'hint' }, el('code', {}, x.rule), ': ' + x.says)));
  }
  // nowhereToSend says the rules in force, once read, have no destination.
  const nowhereToSend = () => !!rulesInForce && !rulesInForce.webhook && !rulesInForce.alertmanagers;
  // sendTestAlert asks the reporter to send a test alert to the webhook and
  // every Alertmanager, and says beside the button what each did with it.
  async function sendTestAlert() {
    const button = $('#alert-test'), r = $('#alert-test-result');
    button.disabled = true;
    r.textContent = 'sending…';
    try {
      // once: a 429 here is the test alerts' own limit, said as it is.
      const got = await api('/api/v1/alerts/test', { method: 'POST', once: true });
      const said = (p) => p.sent ? 'sent' : 'not sent (' + p.error + ')';
      const parts = [];
      if (got.webhook) parts.push('the webhook: ' + said(got.webhook));
      got.alertmanagers.forEach((p, i) => parts.push((got.alertmanagers.length > 1 ? 'Alertmanager ' + (i + 1) + ' of ' + got.alertmanagers.length : 'the Alertmanager') + ': ' + said(p)));
      r.textContent = parts.length ? parts.join('; ') + '.' : 'Nowhere to send it: no --alert-webhook-url, no --alertmanager-url.';
      r.dataset.sent = String(parts.length > 0 && (!got.webhook || got.webhook.sent) && got.alertmanagers.every((p) => p.sent));
    } catch (e) {
      r.textContent = e instanceof AuthError ? '' : 'not sent: ' + e.message;
      r.dataset.sent = 'false';
    } finally {
      button.disabled = nowhereToSend();
    }
  }
  $('#alert-test').addEventListener('click', sendTestAlert);

  // Silences (GET, POST /api/v1/alerts/silences, DELETE …/{id}): read at
  // every refresh of the overview (a list from NATS, no ClickHouse), when
  // the list is opened and after each change, so that one added or ended
  // elsewhere, or pending and now begun, shows within seconds. Those
  // active and pending are counted beside the heading, closed or open: a
  // silence nobody remembers (every rule, for a week) pages nobody, firing
  // or not. silencesChange counts the changes made here: a refresh asked
  // before one draws nothing of its older list.
  let silencesChange = 0;
  // shownSilence is the id of the silence a firing's "its silence…" showed:
  // marked in the list at every draw, until another is shown.
  let shownSilence = '';
  const silenceWhat = (s) => (s.rule || 'every rule') + (s.channel ? ' on ' + s.channel : '');
  // silenceItem is one silence's line, with "End now" unless it ended.
  function silenceItem(s) {
    const when = s.state === 'pending' ? ' from ' + fmtTime(s.starts_at) + ' until ' + fmtTime(s.ends_at)
      : s.state === 'active' ? ' until ' + fmtTime(s.ends_at) : ' ended ' + fmtTime(s.ends_at);
    const li = el('li', { 'data-silence': s.id, 'data-state': s.state, class: [s.state === 'expired' ? 'hint' : '', s.id === shownSilence ? 'shown' : ''].filter(Boolean).join(' ') },
      el('strong', {}, silenceWhat(s)), when + ' (' + s.comment + (s.created_by ? ', by ' + s.created_by : '') + ')');
    if (s.state !== 'expired') {
      const end = el('button', { type: 'button' }, 'End now');
      end.addEventListener('click', () => endSilence(s, end));
      li.append(' ', end);
    }
    return li;
  }
  function drawSilences(list) {
    const active = list.filter((s) => s.state === 'active').length, pending = list.filter((s) => s.state === 'pending').length;
    const count = $('#silences-count');
    count.dataset.active = active;
    count.dataset.pending = pending;
    count.className = active ? 'silences-active' : '';
    count.textContent = active + pending ? ' (' + [active ? active + ' active' : '', pending ? pending + ' pending' : ''].filter(Boolean).join(', ') + ')' : '';
    // The ended silences (kept 7 to 37 days) are listed under a closed
    // "N ended" of their own, after those that hold or will: a month of
    // them would push the form off the screen.
    const holding = list.filter((s) => s.state !== 'expired'), ended = list.filter((s) => s.state === 'expired');
    const items = holding.map(silenceItem);
    if (ended.length) {
      const wasOpen = !!$('#silences-ended[open]');
      items.push(el('li', { class: 'hint' }, el('details', Object.assign({ id: 'silences-ended' }, wasOpen ? { open: '' } : {}),
        el('summary', {}, ended.length + ' ended'), el('ul', {}, ...ended.map(silenceItem)))));
    }
    replaceIfChanged($('#silences-list'), ...(list.length ? items : [el('li', { class: 'hint' }, 'No silence.')]));
  }
  const silencesNotLoaded = (msg) => replaceIfChanged($('#silences-list'), el('li', { class: 'failed' }, msg));
  async function loadSilences() {
    try {
      drawSilences((await api('/api/v1/alerts/silences', { timeout: LOAD_TIMEOUT_MS })).silences);
    } catch (e) {
      if (!(e instanceof AuthError)) silencesNotLoaded('not loaded: ' + e.message);
    }
  }
  $('#silences').addEventListener('toggle', () => { if ($('#silences').open) loadSilences(); });
  // After a change, here and in the form, the list is read at once and
  // drawn without waiting for the overview's refresh, which reads it again
  // beside its figures and redraws the firings' "silenced until"; after a
  // failed one too, to show what stands.
  async function endSilence(s, button) {
    button.disabled = true;
    try {
      await api('/api/v1/alerts/silences/' + encodeURIComponent(s.id), { method: 'DELETE' });
      silencesChange++;
      $('#silence-result').textContent = 'ended the silence of ' + silenceWhat(s) + '.';
      refresh(true);
    } catch (e) {
      if (!(e instanceof AuthError)) $('#silence-result').textContent = 'not ended: ' + e.message;
    }
    loadSilences();
  }
  // Who silences is asked, as Alertmanager's form asks for a creator (a
  // silence pages nobody: the list says whose it is), and kept in this
  // browser for the next one.
  const SILENCE_BY_KEY = 'otpscope.silenceBy';
  $('#silence-form').by.value = localStorage.getItem(SILENCE_BY_KEY) || '';
  $('#silence-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const form = ev.target, result = $('#silence-result');
    const req = { duration: form.duration.value, comment: form.comment.value.trim(), created_by: form.by.value.trim() };
    if (form.rule.value) req.rule = form.rule.value;
    if (form.channel.value.trim()) req.channel = form.channel.value.trim();
    result.textContent = 'silencing…';
    try {
      const s = await api('/api/v1/alerts/silences', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(req) });
      silencesChange++;
      localStorage.setItem(SILENCE_BY_KEY, req.created_by);
      result.textContent = 'silenced ' + silenceWhat(s) + ' until ' + fmtTime(s.ends_at) + '.';
      form.comment.value = '';
      refresh(true);
    } catch (e) {
      result.textContent = e instanceof AuthError ? '' : 'not silenced: ' + e.message;
    }
    loadSilences();
  });
  // silenceFiring opens the silences with the form set to a firing rule.
  // One a silence holds already shows that silence instead (marked, its
  // "End now" focused), the form set as well to add a longer one.
  function silenceFiring(f) {
    const form = $('#silence-form');
    form.rule.value = f.rule;
    form.channel.value = f.channel && f.channel !== 'OTHER' ? f.channel : '';
    $('#silences').open = true;
    shownSilence = f.silenced_by || '';
    for (const li of document.querySelectorAll('#silences-list li[data-silence]')) li.classList.toggle('shown', li.dataset.silence === shownSilence);
    const shown = shownSilence && document.querySelector('#silences-list li.shown');
    if (!shown) {
      form.comment.focus();
      return;
    }
    const ended = shown.closest('#silences-ended');
    if (ended) ended.open = true;
    shown.scrollIntoView({ block: 'center' });
    (shown.querySelector('button') || form.comment).focus();
  }
  // An alert's window before, named as the reporter's summary names it:
  // the hour, day or week before, else its length.
  const ALERT_BEFORE = { 3600e3: 'the hour before', 86400e3: 'the day before', 604800e3: 'the week before' };
  function alertBefore(f) {
    if (!f.before) return ''; // an older reporter's, or the window before not read
    return '; ' + alertBeforeName(f.before) + ' ' + (f.before.value === null ? 'none to judge' : alertFigures(f.rule, f.before.value, f.threshold)[0]);
  }
  // alertBeforeName names an alert's window before as its summary does.
  const alertBeforeName = (b) => {
    const ms = Date.parse(b.to) - Date.parse(b.from);
    return ALERT_BEFORE[ms] || 'the ' + fmtSpan(ms) + ' before';
  };
  // alertHref is the overview of the window an alert's rule judged, on its
  // channel (all of them for the fallback rate and OTHER), as the
  // reporter's webhook links it (ReportsConfig.alertLink): whole seconds,
  // its end the second after the evaluation's.
  const alertHref = (a) => '#overview?' + new URLSearchParams(Object.assign({ range: 'custom', from: isoSec(new Date(Date.parse(a.from))),
    to: isoSec(new Date(Math.floor(Date.parse(a.to) / 1000) * 1000 + 1000)) }, a.channel && a.channel !== 'OTHER' ? { channel: a.channel } : {})).toString().replace(/%3A/g, ':');
  // The rules firing now, whatever the window: the first thing to see. A
  // rule kept firing (--alert-keep-firing-for) holds no longer: its figure
  // is the one it last held with, and the line says when that was. One a
  // silence holds says until when the webhook is held.
  const silenceButton = (f) => {
    const what = 'the webhook\'s posts of ' + f.rule + (f.channel ? ' on ' + f.channel : '');
    const b = f.silenced_by
      ? el('button', { type: 'button', class: 'silence', 'data-silence': f.silenced_by, title: 'show the silence holding ' + what + ' (' + f.silenced_by + ')' }, 'its silence…')
      : el('button', { type: 'button', class: 'silence', title: 'hold ' + what + ' for a while' }, 'silence…');
    b.addEventListener('click', () => silenceFiring(f));
    return b;
  };
  function drawFiring(now) {
    const firing = $('#firing');
    firing.dataset.count = now.firing.length;
    firing.className = now.firing.length ? 'state-firing' : 'state-resolved';
    replaceIfChanged(firing, now.firing.length ? 'Firing now: ' : 'No alert rule is firing.',
      ...now.firing.flatMap((f, i) => [el('span', { 'data-rule': f.rule, 'data-channel': f.channel || '', 'data-silenced': f.silenced_by || '', title: f.summary + ' (evaluated ' + fmtTime(f.to) + ')' },
        (i ? '; ' : ''), el('a', { href: alertHref(f) }, f.rule + ' on ' + (f.channel || 'all channels')), ' since ' + fmtTime(f.since) + ' (' + alertFigures(f.rule, f.value, f.threshold)[0] + alertBefore(f) +
          (f.kept ? '; kept firing: it held last at ' + fmtTime(f.to) : '') + (f.silenced_until ? '; silenced until ' + fmtTime(f.silenced_until) : '') + ')'),
        ' ', silenceButton(f)]));
    // Announced: which rules fire, not their values, which move at every
    // evaluation (the line above, not live, has them).
    replaceIfChanged($('#firing-live'), now.firing.length ? 'Firing now: ' + now.firing.map((f) => f.rule + ' on ' + (f.channel || 'all channels')).join('; ') : 'No alert rule is firing.');
  }
  // drawSLO says how the logins stand against the team's objective
  // (--slo-delivery-rate), in the reporter's words; nothing without one
  // (the window's own figures are in the table). Marked as a firing alert
  // when the budget is spent, or burns as fast as the SRE workbook pages
  // on: 14.4 times over the last hour, 6 over 6 hours.
  const PAGE_BURN = { 3600: 14.4, 21600: 6 };
  function drawSLO(slo) {
    const p = $('#slo');
    p.hidden = slo.objective === null;
    if (p.hidden) return;
    const paging = slo.burn.filter((b) => b.rate !== null && PAGE_BURN[b.window_seconds] && b.rate >= PAGE_BURN[b.window_seconds]);
    const spent = slo.budget !== null && slo.budget.remaining < 0;
    p.className = spent || paging.length ? 'state-firing' : '';
    p.dataset.remaining = slo.budget === null ? '' : slo.budget.remaining;
    p.dataset.paging = paging.map((b) => b.window_seconds).join(',');
    replaceIfChanged(p, 'Objective: ' + slo.says + '.');
    p.title = 'as of ' + fmtTime(slo.as_of) + '; a burn rate of 1 spends the error budget exactly by the end of the window (' + fmtTime(slo.from) + ' … ' + fmtTime(slo.to) + ')';
  }
  // The channel filter offers the channels an unfiltered Overview showed
  // (known ones first), so a name need not be typed, nor mistyped.
  function offerChannels(names) {
    const all = [...new Set(CHANNELS.concat(names))];
    $('#channels-seen').replaceChildren(...all.map((n) => el('option', { value: n })));
  }
  offerChannels([]);
  function drawChannels(chs, before) {
    if (!applied('#channel')) offerChannels(chs.channels.map((c) => c.channel));
    const tbody = $('#channels tbody');
    const was = before.chs instanceof Error ? {} : Object.fromEntries(before.chs.channels.map((c) => [c.channel, c]));
    replaceRows(tbody, 'channel', $('#channels'), chs.channels.map((c) => el('tr', { 'data-channel': c.channel },
      el('td', { 'data-field': 'channel' }, c.channel),
      el('td', { class: 'num', 'data-field': 'attempts' }, String(c.attempts)),
      el('td', { class: 'num', 'data-field': 'delivered' }, String(c.delivered)),
      el('td', { class: 'num', 'data-field': 'failed' }, String(c.failed)),
      el('td', { class: 'num', 'data-field': 'pending' }, String(c.pending)),
      el('td', { class: 'num', 'data-field': 'unrecoverable' }, String(c.unrecoverable)),
      el('td', { class: 'num', 'data-field': 'delivery_rate', 'data-value': c.delivery_rate === null ? '' : c.delivery_rate }, fmtPct(c.delivery_rate)),
      rateBeforeCell(before, before.chs, was[c.channel], 'no ' + c.channel + ' attempt', (x) => x.attempts + ' attempts'),
      el('td', { class: 'num', 'data-field': 'latency_p50', 'data-value': c.latency_ms ? c.latency_ms.p50 : '' }, fmtMs(c.latency_ms && c.latency_ms.p50)),
      el('td', { class: 'num', 'data-field': 'latency_p95', 'data-value': c.latency_ms ? c.latency_ms.p95 : '' }, fmtMs(c.latency_ms && c.latency_ms.p95)),
      errorsCell(c.errors))));
    if (!chs.channels.length) tbody.append(el('tr', {}, el('td', { colspan: 11, class: 'hint' }, 'no attempts in this window')));
    const cp = $('#completeness');
    cp.dataset.pending = chs.completeness.pending;
    cp.textContent = describeCompleteness(chs.completeness, chs.channels.length ? '' : 'no attempts');
  }
  // rateBeforeCell is a row's (a channel's, a path's) delivery rate in the
  // window before: c, its figures in answer (that window's /channels or
  // /fallback), or none when it had none there ("no SMS attempt"); what it
  // is of (of: "4 attempts") and that window in its tooltip. The API's
  // rate as it is: the reader sets the two side by side, nothing is
  // subtracted here.
  function rateBeforeCell(before, answer, c, none, of) {
    const span = fmtTime(before.w.from) + ' … ' + fmtTime(before.w.to);
    const title = answer instanceof Error ? before.name + (answer.status === 400 ? ': none to read: ' : ': not loaded: ') + answer.message
      : !c ? none + ' ' + before.name + ' (' + span + ')'
        : before.name + ' (' + span + '): ' + c.delivered + ' delivered, ' + c.failed + ' failed of ' + of(c) + (c.pending ? ', ' + c.pending + ' pending' : '');
    const rate = c && !(answer instanceof Error) ? c.delivery_rate : null;
    return el('td', { class: 'num', 'data-field': 'delivery_rate_before', 'data-value': rate === null ? '' : rate, title: title }, fmtPct(rate));
  }
  // errorsCell says why a channel's attempts failed: the API's error
  // codes, most frequent first. The first few fit the table; the tooltip
  // lists them all, and so does the cell, opened ("+N more" is a
  // disclosure: a keyboard or a screen reader has no tooltip). A failure
  // with no code (recovered by polling) is "(none)", as in the reports.
  const ERRORS_SHOWN = 2;
  function errorsCell(errors) {
    const say = (e) => (e.code || '(none)') + ' (' + e.count + ')';
    const shown = errors.slice(0, ERRORS_SHOWN).map(say).join(', ');
    const attrs = { class: 'errors', 'data-field': 'errors', title: errors.length ? errors.map(say).join('\n') : null };
    if (errors.length <= ERRORS_SHOWN) return el('td', attrs, errors.length ? shown : '–');
    return el('td', attrs, el('details', {}, el('summary', {}, shown + ' +' + (errors.length - ERRORS_SHOWN) + ' more'),
      el('ul', {}, ...errors.map((e) => el('li', {}, say(e))))));
  }
  // Journeys filtered by a channel are those it was primary in (the API's
  // /fallback), not those that tried it: said, beside attempts that are.
  const primaryOf = (channel) => channel ? ' whose primary channel is ' + channel.toUpperCase() : '';
  // fallbackBefore says the fallback rate of the window before: "the hour
  // before 9.4% of 470" (of its journeys), "the hour before no journeys",
  // or why there is none.
  const fallbackBefore = (before) => before.name + ' ' + (before.fb instanceof Error ? (before.fb.status === 400 ? 'none to read' : 'not loaded')
    : before.fb.otps ? fmtPct(before.fb.fallback_rate) + ' of ' + before.fb.otps : 'no journeys');
  function drawFallbackSummary(fb, channel, before) {
    const s = $('#fallback-summary');
    s.dataset.otps = fb.otps;
    s.dataset.fallbackRate = fb.fallback_rate === null ? '' : fb.fallback_rate;
    const rateBefore = before.fb instanceof Error ? null : before.fb.fallback_rate;
    s.dataset.fallbackRateBefore = rateBefore === null ? '' : rateBefore;
    s.textContent = fb.otps + ' journeys' + primaryOf(channel) + ', ' + fb.fallback_otps + ' with fallback (' + fmtPct(fb.fallback_rate) + '; ' + fallbackBefore(before) + '); time to deliver p50 ' +
      fmtMs(fb.time_to_deliver_ms && fb.time_to_deliver_ms.p50) + ', p95 ' + fmtMs(fb.time_to_deliver_ms && fb.time_to_deliver_ms.p95);
  }
  // One row per firing (rule, channel and since), as of its latest
  // evaluation in the window, newest first (/api/v1/alerts/episodes): a
  // rule firing for an hour is one row, not one per evaluation. Value and
  // threshold as the summary writes them (alertFigures); the volume is
  // settled (or, for delivery_slow, delivered) attempts or journeys; the
  // summary, which repeats the row in words, is the row's tooltip. Beside
  // the value, a firing's figure in the window before (stored from
  // 2026-12-07; none on a resolution). A firing a silence covered says so
  // in its state: the webhook did not page about it then.
  function drawEpisodes(al) {
    const alerts = $('#alerts tbody');
    replaceIfChanged(alerts, ...(al.episodes.length ? al.episodes.map((a) => episodeRow(a, ...alertFigures(a.rule, a.value, a.threshold)))
      : [el('tr', {}, el('td', { colspan: 9, class: 'hint' }, 'no alert fired or resolved in this window'))]));
  }
  const beforeCell = (a) => {
    const b = a.before;
    if (!b) return el('td', { class: 'num', 'data-field': 'before', 'data-value': '' }, '–');
    const title = alertBeforeName(b) + ' (' + fmtTime(b.from) + ' … ' + fmtTime(b.to) + '), volume ' + b.volume;
    return el('td', { class: 'num', 'data-field': 'before', 'data-value': b.value === null ? '' : b.value, title: title },
      b.value === null ? 'none to judge' : alertFigures(a.rule, b.value, a.threshold)[0]);
  };
  const episodeRow = (a, value, threshold) => el('tr', { 'data-alert': a.id, 'data-rule': a.rule, 'data-state': a.state, 'data-evaluations': a.evaluations, 'data-silenced': a.silenced_by || '', title: a.summary },
    el('td', {}, fmtTime(a.to)),
    el('td', { 'data-field': 'over' }, el('a', { href: alertHref(a), title: 'the window its latest evaluation judged' }, fmtSpan(Date.parse(a.to) - Date.parse(a.from)))),
    el('td', { 'data-field': 'rule' }, a.rule),
    el('td', { 'data-field': 'channel' }, a.channel || 'all'),
    el('td', Object.assign({ 'data-field': 'state', class: 'state-' + a.state }, a.silenced_by ? { title: 'silence ' + a.silenced_by + ' held the webhook\'s posts of it' } : {}),
      (a.state === 'resolved' ? 'resolved' : a.since === a.to ? 'firing' : 'firing since ' + fmtTime(a.since)) + (a.silenced_by ? ' · silenced' : '')),
    el('td', { class: 'num', 'data-field': 'value', 'data-value': a.value }, value),
    beforeCell(a),
    el('td', { class: 'num', 'data-field': 'threshold' }, threshold),
    el('td', { class: 'num', 'data-field': 'volume' }, String(a.volume)));
  // labelCells names each of a table's cells by its column's heading, which
  // a narrow screen shows beside the figure in place of the heading row
  // (app.css, @media max-width 640px). A row of one cell (a note) is left
  // unnamed.
  function labelCells(table) {
    const heads = [...table.querySelectorAll('thead th')].map((th) => th.firstChild ? th.firstChild.textContent.trim() : '');
    for (const tr of table.querySelectorAll('tbody tr')) {
      if (tr.cells.length === heads.length) [...tr.cells].forEach((td, i) => td.setAttribute('data-label', heads[i]));
    }
  }
  // Every table's cells are named whenever its rows change, whichever page
  // drew them (setting an attribute is no change of rows).
  const labeller = new MutationObserver((changes) => {
    for (const t of new Set(changes.map((c) => c.target.closest('table')))) if (t) labelCells(t);
  });
  for (const tb of document.querySelectorAll('main table tbody')) labeller.observe(tb, { childList: true });
  function drawCharts(ts, before) {
    const pctFmt = (v) => (v * 100).toFixed(0) + '%';
    // Each channel's rate with, faint, its rate in the window before, the
    // window's bucket i beside the window before's i (as long and cut by
    // the same step, they are the same stretch of each): the line that
    // falls away from its faint one is the drop.
    // The fallback rate's chart the same: a rise of fallbacks beside the
    // window before's.
    // The attempts' chart too: traffic falling away from its faint line
    // is webhooks or logins gone missing.
    const faint = (c, prior) => prior ? [[c.channel + ' ' + before.name, prior(c.channel), [4, 3], { show: true, size: 3 }, 'pair', true]] : [];
    const table = (field, prior) => (c) => [[c.channel, c[field]], ...faint(c, prior).map(([label, values]) => [label, values])];
    // The note below a chart names the window its faint lines are of, or
    // says it had no attempts: no faint rate, the attempts' at 0.
    const beforeNote = (id, prior) => {
      const note = $('#' + id.replace('chart-', '') + '-before-note');
      note.textContent = prior && ts.channels.length ? 'Faint: ' + before.name + ', bucket beside bucket (' + fmtTime(before.ts.from) + ' … ' + fmtTime(before.ts.to) + ')' +
        (before.ts.channels.length ? '.' : ': no attempts then.') : '';
      note.hidden = !note.textContent;
    };
    const beside = (id, field) => {
      const prior = priorValues(ts, before, field);
      // Its legend row "SMS / before: 91% / 95%".
      chart(id, ts, (c) => [[c.channel + (prior ? ' / before' : ''), c[field]], ...faint(c, prior)],
        { fmt: pctFmt, range: [0, 1], cell: fmtPct, table: table(field, prior) });
      beforeNote(id, prior);
    };
    beside('chart-rate', 'delivery_rate');
    // A bucket only partly counted is drawn dashed and hollow, apart from
    // the whole ones: its dip is not traffic falling. Rates and latencies
    // are not counts; theirs are drawn as they are.
    const partial = partialBuckets(ts);
    const step = stepName(ts.step_seconds);
    $('#attempts-caption').textContent = 'Attempts per ' + step;
    const partialIdx = partial.flatMap((p, i) => p ? [i] : []);
    // Hollow points on the partial buckets only, not on the neighbours.
    const hollow = { show: true, size: 7, fill: '#fff', filter: () => partialIdx };
    const priorAttempts = priorValues(ts, before, 'attempts');
    chart('chart-attempts', ts, (c) => {
      const whole = c.attempts.map((v, i) => partial[i] ? null : v);
      const label = c.channel + (priorAttempts ? ' / before' : '');
      if (!partialIdx.length) return [[label, whole], ...faint(c, priorAttempts)];
      // Joined to their whole neighbours, so the line does not break.
      const part = c.attempts.map((v, i) => partial[i] || partial[i - 1] || partial[i + 1] ? v : null);
      return [[label, whole], [c.channel + ' (partial)', part, [4, 4], hollow, 'gaps'], ...faint(c, priorAttempts)];
    }, { key: '#' + partialIdx, cell: String, table: table('attempts', priorAttempts), partial: partial });
    beforeNote('chart-attempts', priorAttempts);
    $('#chart-attempts').dataset.partial = ts.start.filter((s, i) => partial[i]).join(',');
    const notes = [];
    const last = ts.start.length - 1;
    if (Date.parse(ts.start[0]) < Date.parse(ts.from)) notes.push('the first ' + step + ', only partly in the window');
    // Not "still filling": read with max_lag, as_of may be minutes behind
    // the clock, and the bucket it falls in long over.
    if (partial[last]) notes.push(Date.parse(ts.start[last]) + ts.step_seconds * 1e3 > Date.parse(ts.as_of) ?
      'the last ' + step + ', counted only up to ' + fmtTime(ts.as_of) + ' (the figures\' as of)' : 'the last ' + step + ', only partly in the window');
    // Said only over lines drawn: an empty window has no dashes.
    const drawn = ts.channels.length > 0 && notes.length > 0;
    $('#attempts-partial').textContent = drawn ? 'Dashed: ' + notes.join('; ') + '.' : '';
    $('#attempts-partial').hidden = !drawn;
    // In ms below a second, in s above, as the tables say latencies.
    chart('chart-latency', ts, (c) => [[c.channel + ' p50 / p95', c.latency_p50_ms], [c.channel + ' p95', c.latency_p95_ms, [6, 4], undefined, 'pair']],
      { fmt: fmtMs, cell: fmtMs, table: (c) => [[c.channel + ' p50', c.latency_p50_ms], [c.channel + ' p95', c.latency_p95_ms]] });
    beside('chart-fallback', 'fallback_rate');
  }

  // priorValues is a channel's figures (field: delivery_rate, attempts,
  // fallback_rate) in the window before, bucket by bucket beside ts's;
  // null when there are none to set beside them: not loaded, refused
  // (before the API's earliest), or cut into other buckets (a custom week
  // of 167 hours on a zone's days, where a clock changed: the window
  // before it starts off midnight).
  function priorValues(ts, before, field) {
    const b = before.ts;
    if (!b || b instanceof Error || b.step_seconds !== ts.step_seconds || b.start.length !== ts.start.length) return null;
    const values = new Map(b.channels.map((c) => [c.channel, c[field]]));
    // A channel without attempts there: none of them, and no rate.
    return (channel) => values.get(channel) || ts.start.map(() => field === 'attempts' ? 0 : null);
  }
  // stepName says a bucket's size in words: minute, 5 min, hour, 3 h, day, 7 days.
  function stepName(s) {
    if (s % 86400 === 0) return s === 86400 ? 'day' : s / 86400 + ' days';
    if (s % 3600 === 0) return s === 3600 ? 'hour' : s / 3600 + ' h';
    if (s % 60 === 0) return s === 60 ? 'minute' : s / 60 + ' min';
    return s + ' s';
  }
  // partialBuckets says which buckets hold less than a step's attempts:
  // one the window starts or ends inside (the API cuts them at from and
  // to), or one not over when the answer was read (as_of).
  function partialBuckets(ts) {
    const step = ts.step_seconds * 1e3, from = Date.parse(ts.from), end = Math.min(Date.parse(ts.to), Date.parse(ts.as_of));
    // A bucket ends where the next starts: on a zone's clock a day bucket
    // is 23 or 25 hours when its clocks change.
    return ts.start.map((s, i) => Date.parse(s) < from || (i + 1 < ts.start.length ? Date.parse(ts.start[i + 1]) : Date.parse(s) + step) > end);
  }

  // settled says nothing in an answer can still settle: every attempt
  // pending is unrecoverable, pending for good (a fixed window is not read
  // again then, as when it is final).
  const settled = (c) => c.final || c.pending === c.unrecoverable;
  // describeCompleteness says how final an answer's figures are; empty
  // names what the answer held none of ('no attempts'), if it held none.
  function describeCompleteness(c, empty) {
    if (!c.pending) return empty ? 'There were ' + empty + ' in this window.' : 'Every attempt in this window has settled: these figures are final.';
    const parts = [];
    if (c.awaiting_reconciliation) parts.push(c.awaiting_reconciliation + ' overdue, awaiting the poller');
    if (c.unrecoverable) parts.push(c.unrecoverable + ' unrecoverable, pending for good (their webhooks lost, and tyntec could not tell their outcome)');
    return c.pending + (c.pending === 1 ? ' attempt' : ' attempts') + ' still pending' + (parts.length ? ': ' + parts.join('; ') : '') +
      (c.settled_until ? '; every attempt that started before ' + fmtTime(c.settled_until) + ' has settled.' : '.');
  }

  // The pipeline as this process sees it (/api/v1/status): is data
  // flowing, is anything behind. Ages are the server's: its time less its
  // readings.
  function pipeline(st) {
    const age = (t) => t ? fmtSpan(Date.parse(st.at) - Date.parse(t)) + ' ago' : 'never';
    const parts = [];
    if (st.ingest) parts.push('last webhook ' + age(st.ingest.last_webhook) + ' (' + st.ingest.webhooks_accepted + ' accepted since start)');
    parts.push(st.stream.error ? 'stream: ' + st.stream.error : 'stream ' + st.stream.messages + ' messages, newest ' + age(st.stream.last_message));
    if (st.sink) parts.push('sink ' + st.sink.lag + ' waiting, ' + st.sink.ack_pending + ' being inserted');
    if (st.poller) parts.push(!st.poller.leading ? 'poller not leading (another replica calls tyntec)'
      : st.poller.backlog_counted === false ? 'poller leading, no reconciliation cycle yet'
      : 'poller tracks ' + st.poller.tracked_otps + ' OTPs, ' + st.poller.reconcile_backlog + ' to reconcile');
    const p = $('#pipeline');
    p.dataset.streamMessages = st.stream.messages;
    p.dataset.warnings = st.warnings.length;
    p.replaceChildren('Pipeline: ' + parts.join(' · '), ...st.warnings.map((w) => el('strong', { class: 'state-firing' }, ' — ' + w)));
    deadLetterWarning(st.dead_letters);
  }
  // Dead letters never replayed: webhooks or events otpscope could not
  // accept, which no figure on the page counts until they are replayed.
  // Said beside the pipeline, since nothing else on the page shows them.
  function deadLetterWarning(d) {
    const p = $('#dead-letters');
    p.hidden = !d || (!d.pending && !d.error);
    if (p.hidden) { delete p.dataset.pending; return; }
    if (d.error) {
      delete p.dataset.pending;
      p.className = 'hint';
      p.replaceChildren('Dead letters: not counted (' + d.error + ').');
      return;
    }
    p.dataset.pending = d.pending;
    p.className = 'state-firing';
    // The link lists those never replayed.
    const link = el('a', { href: '#deadletters', onclick: () => { $('#dl-pending').checked = true; } }, 'the Dead letters page');
    replaceIfChanged(p, (d.pending === 1 ? '1 dead letter' : d.pending + ' dead letters') + ' never replayed, the newest ' + fmtTime(d.newest_pending) +
      ': input otpscope could not accept, which no figure counts until it is replayed. See why on ', link,
      ' or with ', el('code', {}, 'otpscope deadletters list --pending'), ', and replay them once the cause is fixed.');
  }

  // ---- Journeys ----
  async function journeys(w, signal) {
    const get = (path) => api(path, { signal: signal, timeout: LOAD_TIMEOUT_MS });
    const fb = await get('/api/v1/fallback?' + qs(lagged(w)));
    // Then the window before's, as the Overview's: each rate beside its
    // rate there. Its failure leaves the window's to be drawn.
    const before = windowBefore(w);
    const was = await get('/api/v1/fallback?' + qs(lagged(before))).catch((err) => err);
    if (was instanceof AuthError) throw was;
    return () => drawJourneys(w, fb, { w: before, name: beforeName(w), fb: was });
  }
  function drawJourneys(w, fb, before) {
    const o = fb.outcomes;
    $('#journey-summary').textContent = fb.otps + ' journeys (logins and OTPs)' + primaryOf(w.channel) + '; fallback rate ' + fmtPct(fb.fallback_rate) +
      ' (the journeys that tried a second channel, whatever became of them); ' + fallbackBefore(before);
    $('#outcomes tbody').replaceChildren(el('tr', {},
      el('td', { class: 'num', 'data-field': 'delivered_primary' }, String(o.delivered_primary)),
      el('td', { class: 'num', 'data-field': 'delivered_fallback' }, String(o.delivered_fallback)),
      el('td', { class: 'num', 'data-field': 'failed' }, String(o.failed)),
      el('td', { class: 'num', 'data-field': 'pending' }, String(o.pending))));
    const cp = $('#journey-completeness');
    cp.dataset.pending = fb.completeness.pending;
    cp.textContent = describeCompleteness(fb.completeness, fb.otps ? '' : 'no journeys');
    // /fallback's completeness is the window's, every journey's attempts:
    // under a channel filter it counts more than the journeys shown, which
    // only finding their attempts one by one would narrow (docs/analytics.md).
    if (w.channel && fb.completeness.pending) {
      cp.textContent += ' These are every journey\'s attempts in the window, not only those of the journeys whose first channel is ' + w.channel + '.';
    }
    // The API's rate: delivered / (delivered + failed), the pending left out.
    $('#path-rate-before').textContent = before.name;
    const was = before.fb instanceof Error ? {} : Object.fromEntries(before.fb.paths.map((p) => [p.path, p]));
    replaceRows($('#paths tbody'), 'path', $('#journey-summary'), fb.paths.map((p) => el('tr', { 'data-path': p.path },
      el('td', {}, p.path),
      el('td', { class: 'num', 'data-field': 'otps' }, String(p.otps)),
      el('td', { class: 'num', 'data-field': 'delivered' }, String(p.delivered)),
      el('td', { class: 'num', 'data-field': 'failed' }, String(p.failed)),
      el('td', { class: 'num', 'data-field': 'pending' }, String(p.pending)),
      el('td', { class: 'num', 'data-field': 'delivery_rate' }, fmtPct(p.delivery_rate)),
      rateBeforeCell(before, before.fb, was[p.path], 'no ' + p.path + ' journey', (x) => x.otps + ' journeys'))));
    if (!fb.paths.length) $('#paths tbody').append(el('tr', {}, el('td', { colspan: 7, class: 'hint' }, 'no journeys in this window')));
    labelCells($('#paths')); // its heading for the window before may have changed, its rows not
    $('#page-journeys').dataset.loaded = w.from + '/' + w.to;
    // The window before failing is said, and read again; one refused
    // (before the API's earliest) is none to read.
    const failed = before.fb instanceof Error && before.fb.status !== 400;
    return {
      asOf: fb.as_of, final: !failed && settled(fb.completeness),
      warning: failed ? 'Part of the journeys did not load: the journeys of ' + before.name + ' (' + before.fb.message + '). The rest is drawn.' : '',
    };
  }

  // ---- Resends ----
  async function resends(w, signal) {
    const r = await api('/api/v1/resends?' + qs(lagged(w)), { signal: signal, timeout: LOAD_TIMEOUT_MS });
    return () => drawResends(w, r);
  }
  function drawResends(w, r) {
    const s = $('#resend-summary');
    s.dataset.decisions = r.decisions;
    s.textContent = r.decisions + ' resend decisions in this window' + (r.decisions > r.latest.length ? ' (the newest ' + r.latest.length + ' listed below)' : '');
    replaceRows($('#resend-groups tbody'), 'group', $('#resend-groups'), r.groups.map((g) => el('tr', { 'data-group': [g.result, g.trigger_channel, g.trigger_status, g.via].join('|') },
      el('td', { 'data-field': 'result' }, resultName(g.result)),
      el('td', {}, g.trigger_channel), el('td', {}, g.trigger_status), el('td', {}, g.via),
      el('td', { class: 'num', 'data-field': 'decisions' }, String(g.decisions)),
      el('td', { class: 'num', 'data-field': 'delivered_via', title: g.result === 'dryrun' ? 'nothing was sent: tyntec delivered on ' + g.via + ' itself' : null }, String(g.delivered_via)),
      el('td', { class: 'num', 'data-field': 'delivered_otherwise' }, String(g.delivered_otherwise)),
      el('td', { class: 'num', 'data-field': 'not_delivered' }, String(g.not_delivered)),
      el('td', { class: 'num', 'data-field': 'deliver_after_ms' }, fmtMs(g.deliver_after_ms)))));
    if (!r.groups.length) $('#resend-groups tbody').append(el('tr', {}, el('td', { colspan: 9, class: 'hint' }, 'no resend decision in this window')));
    replaceRows($('#resend-latest tbody'), 'decision', $('#resend-summary'), r.latest.map((d) => el('tr', { 'data-decision': d.decision_id },
      el('td', {}, fmtTime(d.decided_at)),
      el('td', {}, el('a', { href: '#otp/' + d.otp_id }, d.otp_id)),
      el('td', {}, d.trigger_channel + ' ' + d.trigger_status),
      el('td', { 'data-field': 'result' }, resultName(d.result)),
      el('td', {}, d.via || ''),
      el('td', { 'data-field': 'outcome', 'data-value': d.outcome, class: 'wrap outcome-' + d.outcome }, d.outcome.replace('_', ' ') +
        (d.delivered_at ? ' (' + d.delivered_channel + ' ' + fmtTime(d.delivered_at) + ')' : '')),
      el('td', { class: 'wrap' }, d.reason || ''))));
    if (!r.latest.length) $('#resend-latest tbody').append(el('tr', {}, el('td', { colspan: 7, class: 'hint' },
      'none: the poller decides by its resend policy (--resend-policy) when a delivery fails')));
    $('#page-resends').dataset.loaded = w.from + '/' + w.to;
    return { asOf: r.as_of };
  }

  // ---- OTP lookup ----
  // lookup shows OTP id; a newer lookup aborts it, so that the page never
  // shows one OTP's details under another's id. The last OTP's details are
  // hidden from the start, and stay so if this one fails.
  let lookingUp = null;
  async function lookup(id) {
    if (lookingUp) lookingUp.abort();
    const ctl = new AbortController();
    lookingUp = ctl;
    $('#otp-result').hidden = true;
    let j;
    try {
      j = await api('/api/v1/otps/' + encodeURIComponent(id), { signal: ctl.signal, timeout: LOAD_TIMEOUT_MS });
    } catch (e) {
      if (ctl.signal.aborted) return;
      throw e;
    }
    if (ctl.signal.aborted) return;
    $('#otp-heading').textContent = 'OTP ' + j.otp_id + (j.outcome ? ': ' + j.outcome.replace('_', ' ') : '');
    const dl = $('#otp-summary');
    const row = (k, v, field) => [el('dt', {}, k), el('dd', { 'data-field': field }, v)];
    dl.replaceChildren(
      ...row('OTP', j.otp_id, 'otp_id'), ...row('profile', j.profile_id || '–', 'profile_id'),
      ...row('path', j.path || (j.attempts.length ? '' : 'none left: its attempts are past --retention-attempts'), 'path'),
      ...row('outcome', j.outcome || '–', 'outcome'),
      ...row('time to deliver', fmtMs(j.time_to_deliver_ms), 'time_to_deliver_ms'),
      ...row('polled status', j.polled_status ? j.polled_status.status : '–', 'polled_status'),
      ...row('resends', String(j.resends.length), 'resends'),
      ...row('completeness', j.attempts.length ? describeCompleteness(j.completeness).replace(' in this window', '') : '–', 'completeness'));
    $('#otp-attempts tbody').replaceChildren(...j.attempts.map((a) => el('tr', { 'data-channel': a.channel },
      el('td', {}, a.channel), el('td', { class: 'outcome-' + a.outcome, 'data-field': 'outcome', 'data-unrecoverable': a.unrecoverable ? 'true' : null },
        a.outcome + (a.unrecoverable ? ' for good (unrecoverable: its outcome was lost and tyntec could not tell it)' : '')),
      el('td', {}, fmtTime(a.first_at)), el('td', {}, fmtTime(a.delivered_at)), el('td', {}, fmtTime(a.failed_at)),
      el('td', { class: 'num' }, fmtMs(a.latency_ms)), el('td', {}, a.error_code || ''))));
    $('#otp-timeline').replaceChildren(...j.events.map((e) => el('li', { 'data-status': e.status },
      fmtTime(e.time) + ' — ' + e.channel + ' ' + e.status + ' (' + e.source + (e.missed_webhook ? ', webhook missed' : '') +
      (e.time_from_receipt ? ', time of receipt: tyntec gave none' : '') + ')' +
      (e.error_code ? ' ' + e.error_code : ''))));
    $('#otp-resends tbody').replaceChildren(...j.resends.map((r) => el('tr', { 'data-decision': r.decision_id },
      el('td', {}, fmtTime(r.decided_at)), el('td', {}, r.trigger_channel + ' ' + r.trigger_status),
      el('td', { 'data-field': 'result' }, resultName(r.result)), el('td', {}, r.via || ''), el('td', { class: 'wrap' }, r.reason || ''))));
    if (!j.resends.length) $('#otp-resends tbody').append(el('tr', {}, el('td', { colspan: 5, class: 'hint' }, 'none')));
    $('#otp-result').hidden = false;
    $('#otp-result').dataset.otp = j.otp_id;
  }
  $('#otp-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const id = $('#otp-id').value.trim();
    history.replaceState(null, '', '#otp/' + id);
    clearError();
    // The answer is read from its heading on: the keyboard goes there.
    lookup(id).then(() => { if (!$('#otp-result').hidden) $('#otp-heading').focus(); }).catch(showError);
  });

  // ---- Events ----
  // The cursors of the pages read so far, the first page's ''.
  // cursors are those of the pages shown so far, the first page's ''; want,
  // when set, the ones of the page asked for, kept once it is drawn (a page
  // that fails to load leaves the count as it was).
  const evState = { cursors: [''], want: null, window: null };
  function firstEventsPage() { evState.cursors = ['']; evState.want = null; }
  // Pages after the first read the first page's window: a cursor belongs
  // to it, and a relative window would move on at every page.
  function eventsWindow() {
    if ((evState.want || evState.cursors).length === 1 || !evState.window) evState.window = currentWindow();
    return evState.window;
  }
  async function eventsPage(w, signal) {
    const cursors = evState.want || evState.cursors;
    const pageNo = cursors.length;
    const q = Object.assign({}, w, { status: $('#ev-status').value, source: $('#ev-source').value,
      otp: $('#ev-otp').value.trim(), limit: $('#ev-limit').value, cursor: cursors[pageNo - 1] });
    const page = await api('/api/v1/events?' + qs(q), { signal: signal, timeout: LOAD_TIMEOUT_MS });
    return () => { evState.cursors = cursors; evState.want = null; return drawEvents(w, page, pageNo); };
  }
  function drawEvents(w, page, pageNo) {
    $('#events-table tbody').replaceChildren(...page.events.map((e) => el('tr', { 'data-event': e.event_id },
      el('td', {}, fmtTime(e.time)),
      el('td', {}, el('a', { href: '#otp/' + e.otp_id }, e.otp_id)),
      el('td', {}, e.channel + (e.unknown_channel ? ' (new to otpscope)' : '')), el('td', {}, e.status),
      el('td', {}, e.source + (e.time_from_receipt ? ', time of receipt: tyntec gave none' : '')), el('td', {}, e.profile_id || ''),
      el('td', {}, e.error_code || ''))));
    if (!page.events.length) $('#events-table tbody').append(el('tr', {}, el('td', { colspan: 7, class: 'hint' }, 'no events')));
    const focused = document.activeElement;
    $('#ev-next').disabled = !page.next;
    $('#ev-prev').disabled = $('#ev-first').disabled = pageNo === 1;
    // A button disabled under the keyboard (Next on the last page) would
    // leave it nowhere: it moves to the next one that still does something.
    if (focused && focused.disabled) (['#ev-next', '#ev-prev', '#ev-first'].map($).find((b) => !b.disabled) || $('#ev-page')).focus();
    $('#ev-next').dataset.cursor = page.next;
    $('#ev-page').textContent = 'page ' + pageNo;
    $('#page-events').dataset.loaded = w.from + '/' + w.to + '#' + pageNo;
    return { asOf: page.as_of };
  }
  $('#events-form').addEventListener('submit', (ev) => { ev.preventDefault(); firstEventsPage(); refresh(); });
  $('#ev-first').addEventListener('click', () => { firstEventsPage(); refresh(); });
  $('#ev-next').addEventListener('click', () => { evState.want = evState.cursors.concat($('#ev-next').dataset.cursor); refresh(); });
  $('#ev-prev').addEventListener('click', () => { if (evState.cursors.length > 1) evState.want = evState.cursors.slice(0, -1); refresh(); });
  // Another filter starts the pages over, as the window's do.
  for (const id of ['#ev-status', '#ev-source', '#ev-otp', '#ev-limit']) $(id).addEventListener('change', () => { firstEventsPage(); refresh(); });

  // ---- Dead letters ----
  let dlRecords = [];
  const DL_LIMIT = 200;
  async function deadLetters(w, signal) {
    const q = { limit: DL_LIMIT };
    if ($('#dl-pending').checked) q.pending = 'true';
    const res = await api('/api/v1/deadletters?' + qs(q), { signal: signal, timeout: LOAD_TIMEOUT_MS });
    return () => drawDeadLetters(res);
  }
  function drawDeadLetters(res) {
    dlRecords = res.deadLetters;
    // The detail shown is of a listed dead letter, or of none.
    if (!dlRecords.some((d) => d.id === $('#dl-id').textContent)) $('#dl-detail').hidden = true;
    replaceRows($('#deadletters-table tbody'), 'id', $('#dl-result'), dlRecords.map((d) => el('tr', { 'data-id': d.id },
      el('td', {}, fmtTime(d.receivedAt)), el('td', {}, d.source), el('td', {}, d.reason),
      el('td', { class: 'num' }, String(d.bodyBytes)),
      el('td', { 'data-field': 'replayed' }, d.replayedAt ? fmtTime(d.replayedAt) : 'no'),
      el('td', {},
        el('button', { type: 'button', class: 'dl-inspect', 'aria-label': 'Inspect dead letter ' + d.id, 'aria-controls': 'dl-detail', onclick: () => inspect(d.id) }, 'Inspect'), ' ',
        el('button', { type: 'button', class: 'dl-replay', 'aria-label': 'Replay dead letter ' + d.id, disabled: d.replayedAt ? '' : null, onclick: () => replay({ ids: [d.id] }) }, 'Replay'), ' ',
        el('button', { type: 'button', class: 'dl-delete', 'aria-label': 'Delete dead letter ' + d.id, onclick: () => deleteDeadLetter(d.id) }, 'Delete')))));
    if (!dlRecords.length) $('#deadletters-table tbody').append(el('tr', {}, el('td', { colspan: 6, class: 'hint' }, 'no dead letters')));
    // Nothing to replay when every one listed was, and all are listed.
    const all = $('#dl-replay-all'), focused = document.activeElement === all;
    all.disabled = dlRecords.length < DL_LIMIT && !dlRecords.some((d) => !d.replayedAt);
    if (focused && all.disabled) $('#dl-result').focus();
    if (dlRecords.length >= DL_LIMIT) $('#deadletters-table tbody').append(el('tr', {}, el('td', { colspan: 6, class: 'hint' },
      'the newest ' + DL_LIMIT + ' are listed; otpscope deadletters list reads them all')));
    $('#page-deadletters').dataset.loaded = String(Date.now());
  }
  function inspect(id) {
    const d = dlRecords.find((r) => r.id === id);
    if (!d) return;
    for (const tr of document.querySelectorAll('#deadletters-table tbody tr')) tr.classList.toggle('selected', tr.dataset.id === id);
    $('#dl-id').textContent = d.id;
    $('#dl-reason').textContent = d.reason + (d.field ? ' (' + d.field + ')' : '') + (d.httpStatus ? ' — HTTP ' + d.httpStatus : '') + (d.truncated ? ' — body truncated' : '') +
      (d.bodyBase64 ? ' — body not UTF-8: each invalid byte shows as \uFFFD; its exact bytes are the API\'s bodyBase64' : '');
    let body = d.body;
    try { body = JSON.stringify(JSON.parse(d.body), null, 2); } catch (e) { /* shown as it came */ }
    $('#dl-body').textContent = body;
    $('#dl-detail').hidden = false;
    // Below up to 200 rows: the keyboard goes to it, and a reader hears it.
    $('#dl-detail h3').focus();
  }
  async function replay(req) {
    try {
      const res = await api('/api/v1/deadletters/replay', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(req) });
      const r = $('#dl-result');
      // An array's elements still invalid are left out of its replay: say
      // which, or the operator would take the whole body for replayed.
      const left = res.replayed.flatMap((o) => (o.left || []).map((l) => o.id + ' ' + l));
      r.textContent = 'replayed ' + res.replayed.length + ', skipped ' + res.skipped.length +
        (res.skipped.length ? ' (' + res.skipped.map((s) => s.id + ': ' + s.skipped).join('; ') + ')' : '') +
        (left.length ? '; left out of the replay, still invalid: ' + left.join('; ') : '');
      r.dataset.replayed = res.replayed.map((o) => o.id).join(',');
      r.dataset.left = left.length;
      refresh();
    } catch (e) { showError(e); }
  }
  // deleteDeadLetter deletes one dead letter for good, once confirmed: one
  // no replay will make valid, or that holds what must not be kept.
  async function deleteDeadLetter(id) {
    if (!confirm('Delete dead letter ' + id + ' for good? Its body and reason are gone; what a replay stored stays.')) return;
    try {
      const res = await api('/api/v1/deadletters?' + qs({ id: id }), { method: 'DELETE' });
      const r = $('#dl-result');
      r.textContent = res.deleted.length ? 'deleted ' + id : id + ' was deleted already';
      r.dataset.deleted = res.deleted.join(',');
      refresh();
    } catch (e) { showError(e); }
  }
  $('#dl-reload').addEventListener('click', () => refresh());
  $('#dl-pending').addEventListener('change', () => refresh());
  $('#dl-replay-all').addEventListener('click', () => {
    if (confirm('Replay every dead letter never replayed? Each is published again as the webhooks it holds.')) replay({ all: true });
  });

  // ---- Backups ----
  async function backups(w, signal) {
    const res = await api('/api/v1/backups', { signal: signal, timeout: LOAD_TIMEOUT_MS });
    return () => drawBackups(res.backups);
  }
  const fmtBytes = (n) => n < 1024 ? n + ' B' : n < 1 << 20 ? (n / 1024).toFixed(1) + ' KiB' : n < 1 << 30 ? (n / (1 << 20)).toFixed(1) + ' MiB' : (n / (1 << 30)).toFixed(2) + ' GiB';
  function drawBackups(list) {
    // Newest first, as the API lists them; a removed one stays listed (its
    // files are gone), a failed one says why.
    replaceRows($('#backups-table tbody'), 'name', $('#bk-result'), list.map((b) => el('tr', { 'data-name': b.name, 'data-status': b.status },
      el('td', {}, el('code', {}, b.name)),
      el('td', { 'data-field': 'status', title: b.error || '' }, b.status + (b.error ? ': ' + b.error : '')),
      el('td', {}, fmtTime(b.started_at)),
      // A removed one's last record is its removal, and its files are gone.
      el('td', {}, b.status === 'started' ? 'taking…' : b.status === 'removed' ? 'removed ' + fmtTime(b.updated_at) : fmtTime(b.updated_at)),
      el('td', { class: 'num' }, b.bytes && b.status !== 'removed' ? fmtBytes(b.bytes) : '–'),
      el('td', { class: 'num' }, b.files && b.status !== 'removed' ? String(b.files) : '–'),
      el('td', { class: 'num' }, b.stream_seq ? String(b.stream_seq) : 'unknown'),
      el('td', {}, b.status === 'created' || b.status === 'failed'
        ? el('button', { type: 'button', class: 'bk-delete', 'aria-label': 'Delete backup ' + b.name, onclick: () => deleteBackup(b.name) }, 'Delete') : ''))));
    if (!list.length) $('#backups-table tbody').append(el('tr', {}, el('td', { colspan: 8, class: 'hint' }, 'no backups yet')));
    $('#page-backups').dataset.loaded = String(Date.now());
  }
  // takeBackup asks for a backup and waits for it: the API answers once it
  // is taken (seconds for millions of events). One at a time: a second
  // request, from here or elsewhere, is refused with 409, which is shown.
  async function takeBackup() {
    const button = $('#bk-take'), r = $('#bk-result');
    // Disabled, the button loses the keyboard's focus: it is given back.
    const focused = document.activeElement === button;
    button.disabled = true;
    r.textContent = 'taking a backup…';
    try {
      const b = await api('/api/v1/backups', { method: 'POST' });
      r.textContent = 'taken ' + b.name + ' (' + fmtBytes(b.bytes) + ')';
      r.dataset.taken = b.name;
      refresh();
    } catch (e) {
      r.textContent = '';
      // The list first (a 409: the one being taken, listed as started),
      // then why: a load drawn clears the error line, so the refusal said
      // before it flashed and was gone.
      await refresh();
      showError(e);
    } finally {
      button.disabled = false;
      if (focused && document.activeElement === document.body) button.focus();
    }
  }
  async function deleteBackup(name) {
    if (!confirm('Delete backup ' + name + ' for good? Its files are removed from --backup-dir; it stays listed as removed.')) return;
    try {
      await api('/api/v1/backups/' + encodeURIComponent(name), { method: 'DELETE' });
      const r = $('#bk-result');
      r.textContent = 'deleted ' + name;
      r.dataset.deleted = name;
      refresh();
    } catch (e) { showError(e); }
  }
  $('#bk-take').addEventListener('click', takeBackup);
  $('#bk-reload').addEventListener('click', () => refresh());

  // ---- Live ----
  // EventSource cannot send a bearer token, so the stream is read with fetch.
  // A stream that ends (the server stopped, the network went) is opened
  // again every few seconds while the page is shown, and the gap marked.
  let liveAbort = null, liveRetry = null;
  // held counts the events not listed while the list is paused (the
  // counts go on), since pausedAt; lostAt is when the stream was lost.
  const live = { count: 0, byKey: new Map(), held: 0, pausedAt: null, lostAt: null };
  const LIVE_ROWS = 200, LIVE_RETRY_MS = 3000;
  function stopLive() {
    clearTimeout(liveRetry);
    liveRetry = null;
    if (liveAbort) { liveAbort.abort(); liveAbort = null; }
    $('#live-state').textContent = 'disconnected';
  }
  // startLive counts from zero: "since opened" is since this visit.
  function startLive() {
    stopLive();
    clearTimeout(liveDraw);
    liveDraw = null;
    liveNew.length = 0;
    live.count = 0;
    live.byKey.clear();
    $('#live-count').textContent = '0';
    $('#live-counts tbody').replaceChildren();
    $('#live-table tbody').replaceChildren();
    live.held = 0;
    live.pausedAt = $('#live-pause').checked ? isoSec(new Date()) : null;
    $('#live-held').textContent = '';
    openLive(false);
  }
  // Paused, the list stands still to be read; resumed, a row says what it
  // left out.
  $('#live-pause').addEventListener('change', () => {
    drawLive(); // what came before, in its place
    if ($('#live-pause').checked) { live.pausedAt = isoSec(new Date()); live.held = 0; return; }
    if (live.held) $('#live-table tbody').prepend(el('tr', { class: 'gap' }, el('td', { colspan: 5, class: 'hint' },
      'paused from ' + fmtTime(live.pausedAt) + ' to ' + fmtTime(isoSec(new Date())) + ': ' + live.held + (live.held === 1 ? ' event' : ' events') + ' not listed (counted above)')));
    live.held = 0;
    live.pausedAt = null;
    $('#live-held').textContent = '';
  });
  async function openLive(again) {
    const ctl = new AbortController();
    liveAbort = ctl;
    let err = null;
    try {
      const res = await api('/api/v1/live', { raw: true, signal: ctl.signal, headers: { 'Accept': 'text/event-stream' } });
      $('#live-state').textContent = 'connected';
      drawLive();
      if (again && $('#live-table tbody').rows.length) $('#live-table tbody').prepend(el('tr', { class: 'gap' },
        el('td', { colspan: 5, class: 'hint' }, (live.lostAt ? 'disconnected at ' + fmtTime(live.lostAt) + ', ' : '') +
          'connected again at ' + fmtTime(isoSec(new Date())) + ': the events in between are not listed')));
      live.lostAt = null;
      const reader = res.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i); buf = buf.slice(i + 2);
          let type = 'message', data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith('event: ')) type = line.slice(7);
            else if (line.startsWith('data: ')) data += line.slice(6);
          }
          if (type === 'delivery') onLive(JSON.parse(data));
          else if (type === 'dropped') $('#live-state').textContent = 'connected (' + data + ' events dropped: too fast to show)';
        }
      }
    } catch (e) {
      err = e;
    }
    if (liveAbort !== ctl || ctl.signal.aborted || err instanceof AuthError) return;
    live.lostAt = live.lostAt || isoSec(new Date());
    $('#live-state').textContent = 'disconnected' + (err ? ' (' + (err.message || err) + ')' : '') + '; connecting again in ' + fmtSpan(LIVE_RETRY_MS);
    liveRetry = setTimeout(() => { if (liveAbort === ctl) openLive(true); }, LIVE_RETRY_MS);
  }
  // A silent-auth attempt's or a push approval's fact carries an id of
  // its own, not an OTP's: it has no OTP lookup.
  const METHODS = { SILENT: 1, PUSH: 1 };
  // An event is counted as it comes and drawn with the others of its
  // LIVE_DRAW_MS: drawn one by one, 30 a second kept a headless Chromium
  // two thirds of a core busy (the counts table and the list laid out
  // again for each; a ninth drawn together), for a list no one reads
  // that fast.
  const LIVE_DRAW_MS = 250;
  const liveNew = []; // the newest events not drawn yet, oldest first
  let liveDraw = null;
  function onLive(e) {
    live.count++;
    const key = e.channel + ' ' + e.status;
    live.byKey.set(key, (live.byKey.get(key) || 0) + 1);
    if ($('#live-pause').checked) live.held++;
    else if (liveNew.push(e) > LIVE_ROWS) liveNew.shift();
    if (!liveDraw) liveDraw = setTimeout(drawLive, LIVE_DRAW_MS);
  }
  // drawLive draws what came since the last draw, at once.
  function drawLive() {
    clearTimeout(liveDraw);
    liveDraw = null;
    $('#live-count').textContent = String(live.count);
    $('#live-counts tbody').replaceChildren(...[...live.byKey.entries()].sort().map(([k, n]) => {
      const [ch, st] = k.split(' ');
      return el('tr', {}, el('td', {}, ch), el('td', {}, st), el('td', { class: 'num' }, String(n)));
    }));
    if (live.held) $('#live-held').textContent = live.held + ' new not listed while paused';
    if (!liveNew.length) return;
    const tbody = $('#live-table tbody');
    tbody.prepend(...liveNew.splice(0).reverse().map((e) => {
      const id = e.channel in METHODS ? el('span', { title: 'a silent-auth attempt or a push approval, not an OTP' }, e.otpId) : el('a', { href: '#otp/' + e.otpId }, e.otpId);
      return el('tr', { 'data-otp': e.otpId },
        el('td', {}, fmtTime(e.timestamp)), el('td', {}, id),
        el('td', {}, e.channel), el('td', {}, e.status), el('td', {}, e.source || 'webhook'));
    }));
    while (tbody.rows.length > LIVE_ROWS) tbody.deleteRow(-1);
  }

  // ---- routing ----
  const PAGES = { overview: overview, journeys: journeys, resends: resends, otp: null, events: eventsPage, deadletters: deadLetters, backups: backups, live: null };
  const WINDOWED = { overview: 1, journeys: 1, resends: 1, events: 1 };
  const FOLLOWS_CLOCK = { overview: 1, journeys: 1, resends: 1 };
  let timer = null;
  function page() {
    const [name, arg] = location.hash.replace(/^#/, '').split('?')[0].split('/');
    // An OTP id as typed, not as the URL encodes it ("a%20b" is "a b").
    let decoded = arg;
    try { decoded = arg && decodeURIComponent(arg); } catch (e) { /* a lone %: as it is */ }
    return { name: name in PAGES ? name : 'overview', arg: decoded };
  }
  // refresh loads the page shown. A newer load aborts the one in flight,
  // and only the newest answer is drawn, labelled with its window: a slow
  // answer for another window or page never lands on the page. Until it is
  // drawn the page says it is loading, but for the timer's refreshes
  // (quiet), which read the same window again.
  let loading = null;
  async function refresh(quiet) {
    if (loading) loading.abort();
    loading = null;
    hideLoading();
    const p = page();
    const load = PAGES[p.name];
    if (!load) return;
    const ctl = new AbortController();
    loading = ctl;
    const section = $('#page-' + p.name);
    // Replaced, not pushed: Back leaves the page rather than undo a filter.
    if (p.name in WINDOWED || p.name === 'deadletters') history.replaceState(null, '', hashFor(p.name));
    try {
      const w = p.name === 'events' ? eventsWindow() : p.name in WINDOWED ? currentWindow() : null;
      if (quiet !== true) showLoading(w, section);
      const draw = await load(w, ctl.signal);
      if (ctl.signal.aborted) return;
      const got = draw() || {};
      const shown = w && got.asOf ? Object.assign({ asOf: got.asOf }, w) : w;
      showWindow(shown);
      showFresh(section, shown, got.final, got.warning);
    } catch (e) {
      if (!ctl.signal.aborted) showStale(e, section);
    } finally {
      if (loading === ctl) { loading = null; hideLoading(); }
    }
  }
  function route() {
    const p = page();
    for (const a of document.querySelectorAll('header nav a')) {
      const here = a.getAttribute('href') === '#' + p.name;
      a.classList.toggle('active', here);
      if (here) {
        a.setAttribute('aria-current', 'page');
        document.title = a.textContent + ' · otpscope console';
      } else a.removeAttribute('aria-current');
    }
    if (p.name !== 'live') stopLive();
    // Signed out: nothing is asked of the API until a token is given.
    if (!$('#login').hidden) return;
    clearError();
    document.querySelector('main').classList.remove('stale');
    // Another window from the URL starts the events over, as the form's do.
    if (formFromHash()) firstEventsPage();
    for (const s of document.querySelectorAll('.page')) s.hidden = s.id !== 'page-' + p.name;
    $('#window').hidden = !(p.name in WINDOWED);
    for (const c of Object.values(charts)) fitChart(c);
    // The label names the window of the figures this page last drew.
    const drawn = $('#page-' + p.name).dataset.window;
    showWindow(drawn ? JSON.parse(drawn) : null);
    if (p.name === 'live') startLive();
    if (p.name === 'otp' && p.arg) {
      $('#otp-id').value = p.arg;
      clearError();
      lookup(p.arg).catch(showError);
    }
    refresh();
    // Relative windows follow the clock: the overview shows new traffic
    // within seconds; a fixed one is read again while its answer says
    // attempts may still settle. A load still in flight is let finish.
    clearInterval(timer);
    timer = setInterval(() => {
      const q = page();
      const follows = q.name in FOLLOWS_CLOCK && ($('#range').value !== 'custom' || $('#page-' + q.name).dataset.final === 'false');
      // A page whose load could not reach otpscope tries again, whatever its window.
      if ((follows || (unreachableSince && PAGES[q.name])) && !document.hidden && $('#login').hidden && !loading && !$('#auto-pause').checked) refresh(true);
    }, 5000);
  }
  // A link followed (a nav link, an OTP's) leaves the keyboard at the
  // page's heading, not wherever the browser's jump to the fragment did.
  window.addEventListener('hashchange', () => { route(); if ($('#login').hidden) focusPage(); });
  $('#skip').addEventListener('click', (ev) => { ev.preventDefault(); focusPage(); });
  if (!location.hash) history.replaceState(null, '', '#overview');
  // Ask for the token first when the API needs one, rather than show a
  // refused request. Until otpscope answers (stopping, starting, a proxy's
  // error page) it is asked again every 5 s, saying since when, as a
  // page's load is: the pages start once it does.
  function start() {
    fetch('config.json', { cache: 'no-store', signal: AbortSignal.timeout(LOAD_TIMEOUT_MS) })
      .then((r) => r.ok ? r.json() : Promise.reject(new Error('HTTP ' + r.status)))
      .then((cfg) => {
        maxLag = cfg.maxLag || '';
        unreachableSince = null;
        clearError();
        if (cfg.auth && !sessionStorage.getItem(TOKEN_KEY)) showLogin('');
        else route();
      }).catch((err) => {
        showError(notAnswering(unreachable(err) || /^HTTP /.test(err.message) ? err.message : 'not the console\'s configuration'));
        setTimeout(start, 5000);
      });
  }
  start();
})();
