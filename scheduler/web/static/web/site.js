// The submit form shows the fields of the chosen kind; pages marked data-refresh follow what they show.
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
  // Cancel and Drain ask first: a click by mistake would stop someone's work.
  document.addEventListener("click", (e) => {
    const b = e.target.closest("button[data-confirm]");
    if (b && !window.confirm(b.dataset.confirm)) e.preventDefault();
  });

  // "Copy as CLI": the command's text to the clipboard (selected instead where the page is not https).
  document.addEventListener("click", async (e) => {
    const b = e.target.closest("button[data-copy]");
    if (!b) return;
    const text = document.getElementById(b.dataset.copy).textContent;
    try { await navigator.clipboard.writeText(text); b.textContent = "Copied"; }
    catch { window.getSelection().selectAllChildren(document.getElementById(b.dataset.copy)); b.textContent = "Selected: Ctrl-C"; }
  });

  // Lists marked data-refresh="SECONDS" are fetched again as the server renders them, while the tab is seen.
  // A job's page (data-wait) is fetched again as soon as the job's status changes: the API's long poll
  // answers then, or after SECONDS at the latest (new events and log lines).
  document.querySelectorAll("[data-refresh]").forEach((el) => {
    const next = async () => {
      if (el.dataset.wait) {
        const seen = encodeURIComponent(el.dataset.status || "");
        const w = await fetch(`${el.dataset.wait}?status=${seen}&timeout=${el.dataset.refresh}`,
          { credentials: "same-origin" }).catch(() => null);
        if (w && w.ok) return again();
      }
      setTimeout(again, 1000 * Number(el.dataset.refresh));
    };
    const again = async () => {
      if (!document.hidden) {
        const r = await fetch(location.href, { credentials: "same-origin" }).catch(() => null);
        if (r && r.ok) {
          const fresh = new DOMParser().parseFromString(await r.text(), "text/html").getElementById(el.id);
          if (fresh) {
            el.replaceChildren(...fresh.childNodes);
            el.dataset.final = fresh.dataset.final || "";
            el.dataset.status = fresh.dataset.status || "";
            el.dataset.refreshed = String(Number(el.dataset.refreshed || 0) + 1);
          }
        }
      }
      // A finished job's page has nothing more to learn.
      if (el.dataset.final !== "1") next();
    };
    if (el.dataset.final !== "1") next();
  });

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

  // The GPU dashboard: live figures, a chart of the last minutes with axes, and jobs by state, every 2 s.
  const fleet = document.getElementById("gpus");
  // Who runs what on a GPU: a link to the job where it is yours (or you are staff), its owner and kind.
  const bytes = (n) => n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(1)} GiB` : `${(n / 2 ** 20).toFixed(1)} MiB`;
  const holder = (h) => {
    if (!h) return [];
    const parts = [];
    if (h.id) {
      const a = document.createElement("a");
      a.href = `/jobs/${h.id}/`; a.textContent = h.id;
      parts.push(a, " ");
    }
    parts.push(`${h.owner} · ${h.kind}`);
    return parts;
  };
  if (fleet) {
    // One uPlot chart per GPU (vendored, static/web/vendor/uplot): utilization and memory in %, over time.
    const charts = new Map();
    const dark = window.matchMedia("(prefers-color-scheme: dark)").matches;
    const axis = { stroke: dark ? "#9ca3af" : "#555", grid: { stroke: dark ? "#374151" : "#eee" }, ticks: { show: false } };
    const draw = (cell, hist, total) => {
      const data = [
        hist.map((p) => p.t),
        hist.map((p) => p.utilization ?? null),
        hist.map((p) => (p.memory_used == null ? null : (100 * p.memory_used) / total)),
      ];
      if (charts.has(cell)) return charts.get(cell).setData(data);
      charts.set(cell, new uPlot({
        width: 300, height: 130,
        scales: { y: { range: [0, 100] } },
        axes: [{ ...axis }, { ...axis, size: 48, values: (u, ticks) => ticks.map((t) => `${t}%`) }],
        series: [{}, { label: "util", stroke: "#1a73e8", width: 1.5 }, { label: "memory", stroke: "#137333", width: 1.5 }],
      }, data, cell));
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
        cells[2].textContent = !g.healthy ? `unhealthy: ${g.health_reason}` : !g.alive ? "silent" : g.draining ? `draining (${g.drain_reason})` : g.held_by ? `held by job ${g.held_by}` : g.reserved_for ? `reserved for job ${g.reserved_for}` : "ready";
        cells[3].textContent = g.snapshot ? `${bytes(s.memory_used)} / ${bytes(s.memory_total)}` : "";
        cells[4].textContent = g.snapshot ? `${Math.round(s.utilization)}%` : "";
        cells[5].textContent = s.temperature ?? "";
        cells[7].textContent = g.queued;
        cells[8].replaceChildren(...holder(g.holder));
        const hist = await fetch(`${fleet.dataset.url}${encodeURIComponent(g.uuid)}/history/`).then((r) => r.json());
        draw(cells[6], hist, s.memory_total || 1);
      }
      fleet.dataset.refreshed = String(Number(fleet.dataset.refreshed || 0) + 1);
      setTimeout(refresh, 2000);
    };
    refresh();
  }
})();

