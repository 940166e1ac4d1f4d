// A GPU's chart over minutes or hours (uPlot, vendored in static/web/vendor/uplot): utilization and memory
// in % of the GPU on a time axis in the reader's local time, each minute's lowest-to-highest reading
// shaded, and a marker where each job on the GPU started and ended. Every element .gpu-chart draws the
// JSON embedded in the page (data-source) first, then follows its API (data-url) every data-every seconds.
(function () {
  const dark = window.matchMedia("(prefers-color-scheme: dark)").matches;
  const axis = { stroke: dark ? "#9ca3af" : "#555", grid: { stroke: dark ? "#374151" : "#eee" } };
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
  const percent = (u, v) => (v == null ? "—" : `${v.toFixed(0)}%`);
  const UTIL = "#1a73e8", MEMORY = dark ? "#4ade80" : "#137333";
  const line = (label, stroke, width) => ({ label, stroke, width, value: percent, points: { show: false } });
  const edge = (label) => ({ ...line(label, "transparent", 0), show: true });
  // The legend's mean also gives the point's range: the band's edges have no legend entry (site.css).
  const spread = (u, v, s, i) => {
    if (v == null || i == null) return percent(u, v);
    const lo = u.data[s + 2][i], hi = u.data[s + 1][i];
    return lo == null || hi == null || hi - lo < 0.5 ? percent(u, v) : `${percent(u, v)} (${lo.toFixed(0)}–${hi.toFixed(0)})`;
  };

  // Columns: time, then util mean, max, min, then memory mean, max, min (memory as % of the GPU's total).
  const columns = (chart) => {
    const pts = chart.points, total = chart.memory_total || 1;
    const of = (key, scale) => pts.map((p) => (p[key] == null ? null : p[key] * scale));
    return [
      pts.map((p) => p.t),
      ...["mean", "max", "min"].map((s) => of(`utilization_${s}`, 1)),
      ...["mean", "max", "min"].map((s) => of(`memory_used_${s}`, 100 / total)),
    ];
  };

  const when = (t) => new Date(t * 1000).toLocaleString([], { dateStyle: "medium", timeStyle: "medium" });
  // A time tick in local time: hours and minutes, with the day under the first tick and under midnight.
  const ticks = (splits) => splits.map((t, i) => {
    const d = new Date(t * 1000), hm = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    const newDay = i === 0 || new Date(splits[i - 1] * 1000).toDateString() !== d.toDateString();
    return newDay ? `${hm}\n${d.toLocaleDateString([], { weekday: "short", day: "numeric", month: "short" })}` : hm;
  });

  // A job's start (▶) and end (■): a link to the job where its id is given (yours, or you are staff).
  const marker = (u, job, at, kind) => {
    const m = document.createElement(job.id == null ? "span" : "a");
    if (job.id != null) m.href = `/jobs/${job.id}/`;
    m.className = `marker ${kind}`;
    m.dataset.job = job.id ?? "";
    const x = u.valToPos(at, "x");
    m.style.left = `${x}px`;
    // Near the right edge the label goes left of its line, so it stays on the chart.
    if (x > 0.8 * u.over.clientWidth) m.classList.add("left");
    const name = job.id == null ? `${job.owner}'s ${job.kind}` : `job ${job.id} (${job.owner}, ${job.kind})`;
    m.title = `${name} ${kind === "start" ? "started" : "ended"} ${when(at)}, ${job.status}`;
    const label = document.createElement("span");
    label.className = "label";
    label.textContent = `${kind === "start" ? "▶" : "■"} ${job.id ?? job.owner}`;
    m.appendChild(label);
    return m;
  };

  const markers = (u, chart) => {
    let layer = u.over.querySelector(".markers");
    if (!layer) {
      layer = document.createElement("div");
      layer.className = "markers";
      u.over.appendChild(layer);
    }
    const shown = [];
    for (const job of chart.jobs) {
      const edges = [[Date.parse(job.started_at) / 1000, "start"]];
      if (job.finished_at) edges.push([Date.parse(job.finished_at) / 1000, "end"]);
      for (const [at, kind] of edges) {
        if (at >= u.scales.x.min && at <= u.scales.x.max) shown.push(marker(u, job, at, kind));
      }
    }
    // Labels of markers close together would overlap: each steps down a line from the one before.
    shown.forEach((m, i) => { m.firstChild.style.top = `${(i % 4) * 1.3}em`; });
    layer.replaceChildren(...shown);
    u.root.parentNode.setAttribute("aria-label", `Utilization and memory from ${when(chart.start)} to ${when(chart.end)} ` +
      `(${zone}), ${shown.length} job markers`);
  };

  const draw = (el) => {
    let chart = JSON.parse(document.getElementById(el.dataset.source).textContent);
    const height = Number(el.dataset.height || 280);
    const u = new uPlot({
      width: el.clientWidth || 600,
      height,
      scales: { x: { time: true, range: () => [chart.start, chart.end] }, y: { range: [0, 100] } },
      axes: [
        {
          ...axis, label: `local time (${zone})`, labelSize: 24, size: 56,
          // The ticks drawn (on the canvas) are kept on the element too, for tests and the curious.
          values: (u, splits) => { const t = ticks(splits); el.dataset.ticks = t.join(" | "); return t; },
        },
        { ...axis, label: "% of the GPU", labelSize: 24, size: 48, values: (u, ticks) => ticks.map((t) => `${t}%`) },
      ],
      series: [
        { value: (u, t) => (t == null ? "" : when(t)) },
        { ...line("utilization", UTIL, 1.5), value: spread }, edge("util max"), edge("util min"),
        { ...line("memory", MEMORY, 1.5), value: spread }, edge("memory max"), edge("memory min"),
      ],
      bands: [
        { series: [2, 3], fill: dark ? "rgba(96,165,250,.25)" : "rgba(26,115,232,.15)" },
        { series: [5, 6], fill: dark ? "rgba(74,222,128,.2)" : "rgba(19,115,51,.12)" },
      ],
      hooks: { draw: [(u) => markers(u, chart)] },
    }, columns(chart), el);
    el.dataset.drawn = "1";
    window.addEventListener("resize", () => u.setSize({ width: el.clientWidth, height }));
    const follow = async () => {
      if (!document.hidden) {
        const r = await fetch(el.dataset.url, { credentials: "same-origin" }).catch(() => null);
        if (r && r.ok) {
          chart = await r.json();
          u.setData(columns(chart));
          el.dataset.refreshed = String(Number(el.dataset.refreshed || 0) + 1);
        }
      }
      setTimeout(follow, 1000 * Number(el.dataset.every || 30));
    };
    setTimeout(follow, 1000 * Number(el.dataset.every || 30));
  };

  document.querySelectorAll(".gpu-chart").forEach(draw);
})();
