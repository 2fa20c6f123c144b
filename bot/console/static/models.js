// The model page follows a retrain and a swap without reloading: it asks /admin/models/state every 2 s while
// something is going on, shows the steps and the workers, and reloads the page once it is over (the server
// renders the result). When nothing is going on the page stays as the server rendered it.
(function () {
  "use strict";
  var root = document.getElementById("models");
  if (!root || !window.fetch) { return; }
  var url = root.getAttribute("data-state-url");
  var labels = {validating: "检查训练数据", training: "训练新模型（几分钟）", gating: "和在用的模型对比", done: "完成"};
  function busy(state) {
    return (state.job && state.job.running) || (state.deployed && !state.rolled_out);
  }
  function show(state) {
    var job = document.getElementById("job");
    if (job && state.job) {
      var items = state.job.steps.map(function (s) {
        return "<li>" + (labels[s.step] || s.step) + "（" + Math.round(s.elapsed_s) + " 秒）</li>";
      }).join("");
      job.innerHTML = "<p>" + state.job.started_by + " 在 " + state.job.started_at + " 开始" +
        (state.job.running ? "，正在进行" : "") + "。</p><ol>" + items + "</ol>";
    }
    var workers = document.getElementById("workers");
    if (workers) {
      workers.textContent = state.workers.map(function (w) {
        return w.worker + "：" + (w.serves_deployed ? "已换上" : (w.loading ? "正在加载" : "还是旧模型"));
      }).join("；") || "没有正在运行的 Rasa 进程。";
    }
  }
  var wasBusy = null;
  function poll() {
    fetch(url, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (state) {
      var now = busy(state);
      if (wasBusy && !now) { window.location.reload(); return; }
      wasBusy = now;
      if (now) { show(state); window.setTimeout(poll, 2000); }
    }).catch(function () { window.setTimeout(poll, 5000); });
  }
  poll();
})();
