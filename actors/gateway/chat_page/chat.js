// Parley web chat: Direct Line 3.0 over the WebSocket to this server's gateway.
// The page at /chat/{tenant}/{bot} asks POST /chat/{tenant}/{bot}/token for a token
// (the server holds the secret), starts a conversation, reads the stream, posts the
// user's messages (each with a clientActivityID, so a retry is answered once) and
// reconnects from the last watermark when the socket drops. No build step.
'use strict';

(function () {
  const parts = location.pathname.split('/').filter(Boolean);
  const tenant = decodeURIComponent(parts[1] || '');
  const bot = decodeURIComponent(parts[2] || '');
  const base = '/chat/' + encodeURIComponent(tenant) + '/' + encodeURIComponent(bot);
  const api = '/v3/directline';

  const $ = (id) => document.getElementById(id);
  const transcript = $('transcript');
  const suggestions = $('suggestions');
  const typing = $('typing');
  const input = $('input');
  const send = $('send');
  const status = $('status');

  const userId = sessionUserId();
  const state = {
    token: '', conversationId: '', watermark: '', ws: null, ended: false,
    seen: new Set(), pending: new Map(), retries: 0, reconnectTimer: 0, refreshTimer: 0,
    typingTimer: 0, generation: 0,
  };

  $('bot-name').textContent = bot || 'Chat';
  document.title = (bot || 'Chat') + ' · chat';

  function sessionUserId() {
    const key = 'parley-chat-user';
    try {
      let id = sessionStorage.getItem(key);
      if (!id) { id = 'web-' + randomId(); sessionStorage.setItem(key, id); }
      return id;
    } catch (e) {
      return 'web-' + randomId();
    }
  }

  function randomId() {
    const b = new Uint8Array(9);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  }

  function setStatus(text, cls) {
    status.textContent = text;
    status.className = 'status ' + (cls || '');
  }

  function setComposer(enabled) {
    input.disabled = !enabled;
    send.disabled = !enabled;
    if (enabled) input.focus();
  }

  /// Shows the error banner; `action` is {label, run} or null.
  function showError(text, action) {
    $('banner-text').textContent = text;
    const b = $('banner-action');
    if (action) {
      b.textContent = action.label;
      b.hidden = false;
      b.onclick = () => { hideError(); action.run(); };
    } else {
      b.hidden = true;
      b.onclick = null;
    }
    $('banner').hidden = false;
  }

  function hideError() { $('banner').hidden = true; }

  function scrollDown() { transcript.scrollTop = transcript.scrollHeight; }

  function addBubble(who, text) {
    const li = document.createElement('li');
    li.className = 'msg ' + who;
    const b = document.createElement('div');
    b.className = 'bubble';
    b.textContent = text;
    li.appendChild(b);
    transcript.appendChild(li);
    scrollDown();
    return li;
  }

  function addEvent(text) {
    const li = document.createElement('li');
    li.className = 'event';
    li.textContent = text;
    transcript.appendChild(li);
    scrollDown();
  }

  function showTyping(on) {
    clearTimeout(state.typingTimer);
    typing.hidden = !on;
    if (on) {
      state.typingTimer = setTimeout(() => { typing.hidden = true; }, 5000);
      scrollDown();
    }
  }

  function showSuggestions(actions) {
    suggestions.textContent = '';
    for (const a of actions || []) {
      if (a.type !== 'imBack' && a.type !== 'postBack' && a.type !== 'messageBack') continue;
      const btn = document.createElement('button');
      btn.type = 'button';
      btn.className = 'suggestion';
      btn.textContent = a.title || a.value;
      btn.onclick = () => say(String(a.value !== undefined ? a.value : a.title));
      suggestions.appendChild(btn);
    }
  }

  /// The JSON error message of a failed answer, or its status.
  async function failure(res) {
    try {
      const j = await res.json();
      if (j && j.error && j.error.message) return j.error.message;
    } catch (e) { /* not JSON */ }
    return 'the server answered ' + res.status;
  }

  function authed(extra) {
    return Object.assign({ Authorization: 'Bearer ' + state.token }, extra || {});
  }

  // ------------------------------------------------------------ conversation

  async function start() {
    state.generation++;
    clearTimeout(state.reconnectTimer);
    clearTimeout(state.refreshTimer);
    if (state.ws) { state.ws.onclose = null; state.ws.close(); state.ws = null; }
    Object.assign(state, { token: '', conversationId: '', watermark: '', ended: false, retries: 0 });
    state.seen.clear();
    state.pending.clear();
    transcript.textContent = '';
    showSuggestions([]);
    showTyping(false);
    hideError();
    setComposer(false);
    setStatus('Connecting…');
    try {
      let res = await fetch(base + '/token', { method: 'POST' });
      if (!res.ok) throw new Error(await failure(res));
      const t = await res.json();
      state.token = t.token;
      res = await fetch(api + '/conversations', { method: 'POST', headers: authed() });
      if (!res.ok) throw new Error(await failure(res));
      const c = await res.json();
      state.conversationId = c.conversationId;
      state.token = c.token || state.token;
      scheduleRefresh(c.expires_in || t.expires_in);
      connect(c.streamUrl);
    } catch (e) {
      setStatus('Offline', 'offline');
      showError('Could not start the chat: ' + e.message, { label: 'Try again', run: start });
    }
  }

  function scheduleRefresh(expiresIn) {
    clearTimeout(state.refreshTimer);
    if (!expiresIn || expiresIn <= 0) return;
    const gen = state.generation;
    state.refreshTimer = setTimeout(async () => {
      if (gen !== state.generation || state.ended) return;
      try {
        const res = await fetch(api + '/tokens/refresh', { method: 'POST', headers: authed() });
        if (!res.ok) throw new Error(await failure(res));
        const t = await res.json();
        state.token = t.token;
        scheduleRefresh(t.expires_in);
      } catch (e) {
        scheduleRefresh(30);  // try again soon; the token is still valid for a while
      }
    }, Math.max(5, expiresIn / 2) * 1000);
  }

  function connect(url) {
    const gen = state.generation;
    const ws = new WebSocket(url);
    state.ws = ws;
    ws.onopen = () => {
      if (gen !== state.generation) return;
      state.retries = 0;
      hideError();
      setStatus('Online', 'online');
      if (!state.ended) setComposer(true);
    };
    ws.onmessage = (e) => {
      if (gen !== state.generation || !e.data) return;
      let set;
      try { set = JSON.parse(e.data); } catch (err) { return; }
      if (set.watermark !== undefined && set.watermark !== null) state.watermark = set.watermark;
      for (const a of set.activities || []) receive(a);
    };
    ws.onclose = () => {
      if (gen !== state.generation || state.ws !== ws) return;
      state.ws = null;
      if (state.ended) return;
      setStatus('Reconnecting…');
      const delay = Math.min(10000, 500 * Math.pow(2, state.retries));
      state.retries++;
      if (state.retries > 3)
        showError('Connection lost. Reconnecting…', { label: 'Reconnect now', run: reconnect });
      state.reconnectTimer = setTimeout(reconnect, delay);
    };
  }

  /// A new stream URL for the conversation from the last watermark (nothing is lost
  /// or shown twice: ids already seen are skipped).
  async function reconnect() {
    clearTimeout(state.reconnectTimer);
    if (state.ws || state.ended || !state.conversationId) return;
    const gen = state.generation;
    try {
      let url = api + '/conversations/' + encodeURIComponent(state.conversationId);
      if (state.watermark) url += '?watermark=' + encodeURIComponent(state.watermark);
      const res = await fetch(url, { headers: authed() });
      if (gen !== state.generation) return;
      if (res.status === 403 || res.status === 404) {
        const why = await failure(res);
        setStatus('Offline', 'offline');
        setComposer(false);
        showError('This conversation can no longer continue (' + why + ').',
          { label: 'Start over', run: start });
        return;
      }
      if (!res.ok) throw new Error(await failure(res));
      const c = await res.json();
      if (c.token) state.token = c.token;
      connect(c.streamUrl);
    } catch (e) {
      if (gen !== state.generation) return;
      state.retries++;
      setStatus('Offline', 'offline');
      showError('Cannot reach the server. Retrying…', { label: 'Retry now', run: reconnect });
      state.reconnectTimer = setTimeout(reconnect, Math.min(10000, 500 * Math.pow(2, state.retries)));
    }
  }

  function receive(a) {
    if (a.type === 'typing') {
      if (!a.from || a.from.role !== 'user') showTyping(true);
      return;
    }
    if (a.id) {
      if (state.seen.has(a.id)) return;
      state.seen.add(a.id);
    }
    const fromUser = a.from && (a.from.role === 'user' || a.from.id === userId);
    if (a.type === 'message') {
      if (fromUser) {
        const cid = a.channelData && a.channelData.clientActivityID;
        const mine = cid && state.pending.get(cid);
        if (mine) {
          mine.li.className = 'msg user';
          const note = mine.li.querySelector('.note');
          if (note) note.remove();
          state.pending.delete(cid);
        } else {
          addBubble('user', a.text || '');
        }
        return;
      }
      showTyping(false);
      if (a.text) addBubble('bot', a.text);
      showSuggestions(a.suggestedActions && a.suggestedActions.actions);
      return;
    }
    if (a.type === 'endOfConversation') {
      state.ended = true;
      showTyping(false);
      showSuggestions([]);
      setComposer(false);
      clearTimeout(state.refreshTimer);
      addEvent('The conversation has ended.');
      setStatus('Conversation ended');
      showError('This conversation has ended.', { label: 'Start a new conversation', run: start });
      if (state.ws) { state.ws.onclose = null; state.ws.close(); state.ws = null; }
    }
  }

  // ------------------------------------------------------------ sending

  function say(text) {
    text = text.trim();
    if (!text || state.ended || !state.conversationId) return;
    showSuggestions([]);
    const cid = randomId();
    const li = addBubble('user pending', text);
    state.pending.set(cid, { li, text });
    post(cid, text);
  }

  async function post(cid, text) {
    const p = state.pending.get(cid);
    if (!p) return;
    p.li.className = 'msg user pending';
    const old = p.li.querySelector('.note');
    if (old) old.remove();
    const body = {
      type: 'message', from: { id: userId, role: 'user' }, text, locale: navigator.language,
      channelData: { clientActivityID: cid },
    };
    try {
      const res = await fetch(api + '/conversations/' + encodeURIComponent(state.conversationId) + '/activities', {
        method: 'POST', headers: authed({ 'Content-Type': 'application/json' }), body: JSON.stringify(body),
      });
      if (!res.ok) throw new Error(await failure(res));
      // The echo on the stream marks the bubble sent; a poll covers a stream that is down.
      if (!state.ws) poll();
    } catch (e) {
      showTyping(false);
      if (!state.pending.has(cid)) return;
      p.li.className = 'msg user failed';
      const note = document.createElement('span');
      note.className = 'note';
      note.textContent = 'Not sent (' + e.message + '). ';
      const retry = document.createElement('button');
      retry.type = 'button';
      retry.textContent = 'Retry';
      retry.onclick = () => post(cid, text);  // the same clientActivityID: answered once
      note.appendChild(retry);
      p.li.insertBefore(note, p.li.firstChild);
    }
  }

  /// Reads the activities past the watermark over HTTP (while the stream is down).
  async function poll() {
    try {
      let url = api + '/conversations/' + encodeURIComponent(state.conversationId) + '/activities';
      if (state.watermark) url += '?watermark=' + encodeURIComponent(state.watermark);
      const res = await fetch(url, { headers: authed() });
      if (!res.ok) return;
      const set = await res.json();
      if (set.watermark) state.watermark = set.watermark;
      for (const a of set.activities || []) receive(a);
    } catch (e) { /* the reconnect loop reports it */ }
  }

  $('composer').addEventListener('submit', (e) => {
    e.preventDefault();
    const text = input.value;
    input.value = '';
    say(text);
  });

  // For tests and embedding pages: the conversation and its socket.
  window.parleyChat = {
    get conversationId() { return state.conversationId; },
    get watermark() { return state.watermark; },
    dropSocket() { if (state.ws) state.ws.close(); },
  };

  start();
})();
