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

  // Lists marked data-refresh="SECONDS" are fetched again as the server renders them, while the tab is seen.
  document.querySelectorAll("[data-refresh]").forEach((el) => {
    const again = async () => {
      if (!document.hidden) {
        const r = await fetch(location.href, { credentials: "same-origin" }).catch(() => null);
        if (r && r.ok) {
          const fresh = new DOMParser().parseFromString(await r.text(), "text/html").getElementById(el.id);
          if (fresh) {
            el.replaceChildren(...fresh.childNodes);
            el.dataset.final = fresh.dataset.final || "";
            el.dataset.refreshed = String(Number(el.dataset.refreshed || 0) + 1);
          }
        }
      }
      // A finished job's page has nothing more to learn.
      if (el.dataset.final !== "1") setTimeout(again, 1000 * Number(el.dataset.refresh));
    };
    if (el.dataset.final !== "1") setTimeout(again, 1000 * Number(el.dataset.refresh));
  });

  // The GPU dashboard: live figures, a chart of the last minutes, and jobs by state, every 2 s.
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
        cells[3].textContent = g.snapshot ? `${bytes(s.memory_used)} / ${bytes(s.memory_total)}` : "";
        cells[4].textContent = g.snapshot ? `${Math.round(s.utilization)}%` : "";
        cells[5].textContent = s.temperature ?? "";
        cells[7].textContent = g.queued;
        cells[8].replaceChildren(...holder(g.holder));
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

