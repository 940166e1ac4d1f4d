// The submit form shows the fields of the chosen kind; the job page follows its job until it ends.
(function () {
  const kind = document.getElementById("kind");
  if (kind) {
    kind.addEventListener("change", () => {
      document.querySelectorAll("fieldset.params").forEach((fs) => {
        const on = fs.dataset.kind === kind.value;
        fs.hidden = !on; fs.disabled = !on;
      });
    });
  }
  const job = document.getElementById("job");
  if (job && job.dataset.final !== "1") {
    const set = (id, text) => { document.getElementById(id).textContent = text; };
    const poll = async () => {
      const r = await fetch(job.dataset.url, { credentials: "same-origin" });
      if (!r.ok) return setTimeout(poll, 2000);
      const j = await r.json();
      const status = document.getElementById("status");
      status.textContent = j.status; status.className = "status " + j.status;
      set("reason", j.status === "waiting" ? j.wait_reason : j.route_reason);
      set("attempts", j.attempts); set("queue", j.queue || "—");
      set("ahead", j.ahead ? `· behind ${j.ahead.jobs} waiting jobs` +
        (j.ahead.higher_priority ? ` (${j.ahead.higher_priority} of higher priority)` : "") : "");
      set("result", j.result ? JSON.stringify(j.result, null, 1) : "—");
      document.getElementById("download").hidden = !j.result_url;
      if (j.result_url) document.getElementById("result-npy").href = j.result_url;
      set("error", j.error || "");
      const ol = document.getElementById("events");
      ol.replaceChildren(...j.events.map((e) => {
        const li = document.createElement("li");
        li.textContent = `${e.at.slice(11, 23)} ${e.status} ${e.message}`;
        return li;
      }));
      if (["succeeded", "failed", "cancelled"].includes(j.status)) {
        job.dataset.final = "1";
        const cancel = document.getElementById("cancel");
        if (cancel) cancel.closest("form").remove();
      } else setTimeout(poll, 1000);
    };
    setTimeout(poll, 500);
  }

  // The job page's log pane: new lines by number from the API, scrolled along while "follow" is ticked.
  const pane = document.getElementById("log-pane");
  if (pane) {
    const log = document.getElementById("log");
    let last = Number(pane.dataset.last);
    const more = async () => {
      const r = await fetch(`${pane.dataset.url}?after=${last}`, { credentials: "same-origin" });
      if (!r.ok) return setTimeout(more, 2000);
      const page = await r.json();
      for (const line of page.lines) {
        const span = document.createElement("span");
        span.className = line.stream; span.textContent = line.text + "\n";
        log.appendChild(span);
        last = line.n;
      }
      if (page.lines.length && document.getElementById("log-follow").checked) log.scrollTop = log.scrollHeight;
      if (page.lines.length) return setTimeout(more, 0);
      if (!page.final) setTimeout(more, 1000);
    };
    if (document.getElementById("log-follow").checked) log.scrollTop = log.scrollHeight;
    setTimeout(more, 500);
  }

  // The GPU dashboard: live figures, a chart of the last minutes, and jobs by state, every 2 s.
  const fleet = document.getElementById("gpus");
  if (fleet) {
    const spark = (points, key, scale, colour) => {
      if (points.length < 2) return "";
      const t0 = points[0].t, span = Math.max(points[points.length - 1].t - t0, 1);
      const xy = points.map((p) => `${(100 * (p.t - t0) / span).toFixed(1)},${(30 - 30 * Math.min((p[key] || 0) / scale, 1)).toFixed(1)}`);
      return `<polyline fill="none" stroke="${colour}" stroke-width="1.5" points="${xy.join(" ")}"/>`;
    };
    const refresh = async () => {
      const [gpus, counts] = await Promise.all([
        fetch(fleet.dataset.url).then((r) => r.json()),
        fetch(document.getElementById("counts").dataset.url).then((r) => r.json()),
      ]);
      for (const [status, n] of Object.entries(counts.counts)) {
        const b = document.querySelector(`#counts [data-status="${status}"] b`);
        if (b) b.textContent = n;
      }
      for (const g of gpus) {
        const row = fleet.querySelector(`tr[data-uuid="${g.uuid}"]`);
        if (!row) continue;
        const s = g.snapshot || {}, cells = row.children;
        cells[2].textContent = !g.alive ? "silent" : g.draining ? `draining (${g.drain_reason})` : s.healthy ? "ready" : `unhealthy: ${s.health_reason}`;
        cells[3].textContent = g.snapshot ? `${Math.round(s.memory_used / 1048576)} / ${Math.round(s.memory_total / 1048576)} MiB` : "";
        cells[4].textContent = g.snapshot ? `${Math.round(s.utilization)}%` : "";
        cells[5].textContent = s.temperature ?? "";
        cells[7].textContent = g.queued;
        cells[8].innerHTML = g.running_job ? `<a href="/jobs/${g.running_job}/">${g.running_job}</a>` : "";
        const hist = await fetch(`${fleet.dataset.url}${encodeURIComponent(g.uuid)}/history/`).then((r) => r.json());
        const total = s.memory_total || 1;
        cells[6].innerHTML = `<svg class="spark" viewBox="0 0 100 30" width="160" height="36">` +
          spark(hist, "utilization", 100, "#1a73e8") + spark(hist, "memory_used", total, "#137333") + "</svg>";
      }
      fleet.dataset.refreshed = String(Number(fleet.dataset.refreshed || 0) + 1);
      setTimeout(refresh, 2000);
    };
    refresh();
  }
})();

