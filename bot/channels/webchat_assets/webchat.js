// The web chat page: shows the conversation, sends typed text to chat/send (the server signs and encrypts it
// as WeChat would) and polls chat/inbox for replies that came later through the customer-service API.
(function () {
  "use strict";

  var ASSISTANT_AVATAR = "chat/static/assistant.svg";
  var RESIDENT_AVATAR = "chat/static/resident.svg";
  var POLL_MS = 1500;
  var TIME_GAP_MS = 5 * 60 * 1000; // like WeChat: a timestamp when five minutes passed since the last one

  var messagesEl = document.getElementById("messages");
  var form = document.getElementById("composer");
  var input = document.getElementById("input");
  var sendButton = document.getElementById("send");
  var title = document.getElementById("title");

  function randomId() {
    var bytes = new Uint8Array(12);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function storage() {
    try { return window.localStorage; } catch (e) { return null; }
  }

  var store = storage();
  var client = (store && store.getItem("hg-webchat-client")) || randomId();
  if (store) { store.setItem("hg-webchat-client", client); }
  var historyKey = "hg-webchat-history-" + client;
  var afterKey = "hg-webchat-after-" + client;
  var history = [];
  var after = 0;
  var lastStamp = 0;
  var pending = 0;

  function load() {
    if (!store) { return; }
    try { history = JSON.parse(store.getItem(historyKey) || "[]"); } catch (e) { history = []; }
    after = parseInt(store.getItem(afterKey) || "0", 10) || 0;
  }

  function save() {
    if (!store) { return; }
    store.setItem(historyKey, JSON.stringify(history.slice(-200)));
    store.setItem(afterKey, String(after));
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function formatTime(ms) {
    var d = new Date(ms);
    var now = new Date();
    var hm = pad(d.getHours()) + ":" + pad(d.getMinutes());
    if (d.toDateString() === now.toDateString()) { return hm; }
    return (d.getMonth() + 1) + "月" + d.getDate() + "日 " + hm;
  }

  function scrollDown() { messagesEl.scrollTop = messagesEl.scrollHeight; }

  function stamp(at) {
    if (at - lastStamp < TIME_GAP_MS) { return; }
    lastStamp = at;
    var el = document.createElement("div");
    el.className = "time";
    el.textContent = formatTime(at);
    messagesEl.appendChild(el);
  }

  function render(item) {
    stamp(item.at);
    if (item.kind === "notice") {
      var notice = document.createElement("div");
      notice.className = "notice";
      notice.textContent = item.text;
      messagesEl.appendChild(notice);
      scrollDown();
      return notice;
    }
    var row = document.createElement("div");
    row.className = "msg " + item.kind;
    var avatar = document.createElement("div");
    avatar.className = "avatar";
    var img = document.createElement("img");
    img.alt = item.kind === "in" ? "红管家" : "我";
    img.src = item.kind === "in" ? ASSISTANT_AVATAR : RESIDENT_AVATAR;
    avatar.appendChild(img);
    var bubble = document.createElement("div");
    bubble.className = "bubble";
    bubble.textContent = item.text; // text only: replies are never parsed as HTML
    row.appendChild(avatar);
    row.appendChild(bubble);
    messagesEl.appendChild(row);
    scrollDown();
    return row;
  }

  function add(kind, text, at) {
    var item = { kind: kind, text: text, at: at || Date.now() };
    history.push(item);
    save();
    return render(item);
  }

  function busy(delta) {
    pending += delta;
    document.body.dataset.pending = String(pending);
    title.textContent = pending > 0 ? "对方正在输入..." : title.dataset.title;
  }

  function send(text) {
    var row = add("out", text);
    busy(1);
    fetch("chat/send", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ client: client, text: text })
    }).then(function (resp) {
      return resp.json().then(function (data) { return { ok: resp.ok, data: data }; });
    }).then(function (result) {
      if (result.data.reply) {
        add("in", result.data.reply);
      } else if (!result.ok) {
        row.classList.add("failed");
        add("notice", result.data.notice || "消息发送失败，请稍后再试");
      }
    }).catch(function () {
      row.classList.add("failed");
      add("notice", "网络不可用，请检查网络设置");
    }).then(function () { busy(-1); poll(); });
  }

  var polling = false;
  function poll() {
    if (polling) { return; }
    polling = true;
    fetch("chat/inbox?client=" + encodeURIComponent(client) + "&after=" + after)
      .then(function (resp) { return resp.ok ? resp.json() : { messages: [] }; })
      .then(function (data) {
        (data.messages || []).forEach(function (m) {
          after = Math.max(after, m.seq);
          add("in", m.text, Math.round(m.at * 1000));
        });
        save();
      })
      .catch(function () { /* the next poll tries again */ })
      .then(function () { polling = false; });
  }

  function resize() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 110) + "px";
    sendButton.disabled = !input.value.trim();
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) { return; }
    input.value = "";
    resize();
    send(text);
    input.focus();
  });
  input.addEventListener("input", resize);
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit"));
    }
  });

  load();
  history.forEach(render);
  busy(0);
  poll();
  window.setInterval(poll, POLL_MS);
  document.body.dataset.client = client;
  document.body.dataset.ready = "1";
})();
