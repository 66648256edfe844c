#include "unimem/report_page.hpp"

#include <string_view>

namespace unimem::cli {

namespace {

// The template: the data goes where kDataMarker stands.
constexpr std::string_view kDataMarker = "@REPORT_DATA@";

constexpr std::string_view kTemplate = R"page(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; connect-src 'none'">
<title>unimem report</title>
<style>
body { font: 13px/1.4 system-ui, sans-serif; margin: 16px 24px; color: #222; background: #fff; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 22px 0 6px; border-bottom: 1px solid #ddd; }
h3 { font-size: 13px; margin: 12px 0 4px; }
table { border-collapse: collapse; }
td, th { padding: 2px 10px; border-bottom: 1px solid #eee; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.meta { color: #555; }
.note { color: #8a5a00; }
#errors { color: #b00; white-space: pre-wrap; }
svg { display: block; }
.legend span { display: inline-block; margin-right: 14px; }
.swatch { display: inline-block; width: 10px; height: 10px; margin-right: 4px; vertical-align: middle; }
</style>
</head>
<body>
<h1>unimem report</h1>
<div id="meta" class="meta"></div>
<pre id="errors"></pre>
<h2>Fragmentation summary</h2>
<div id="summary"></div>
<h2>Live and reserved bytes over the trace</h2>
<div id="timelines"></div>
<h2>Segment map</h2>
<div class="legend"><span><i class="swatch" style="background:#e8e8e8;border:1px solid #bbb"></i>free</span><span><i class="swatch" style="background:hsl(220,70%,55%)"></i>small allocation</span><span><i class="swatch" style="background:hsl(0,70%,55%)"></i>large allocation</span></div>
<div id="maps"></div>
<h2>Largest allocations live at the map's moment</h2>
<div id="largest"></div>
<script type="application/json" id="report-data">@REPORT_DATA@</script>
<script>
"use strict";
(function () {
  const errors = document.getElementById("errors");
  function fail(message) {
    errors.textContent += message + "\n";
    document.body.setAttribute("data-status", "error");
  }
  window.addEventListener("error", function (e) { fail("error: " + e.message); });
  function esc(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function bytes(n) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let v = Number(n), u = 0;
    while (v >= 1024 && u < units.length - 1) { v /= 1024; ++u; }
    return (u === 0 ? String(v) : v.toFixed(v < 10 ? 2 : 1)) + " " + units[u];
  }
  // Allocation colours run from blue (small) to red (large) on a log scale of the sizes in view.
  function colourScale(sizes) {
    let lo = Infinity, hi = 0;
    for (const s of sizes) { if (s > 0) { lo = Math.min(lo, s); hi = Math.max(hi, s); } }
    const span = hi > lo ? Math.log(hi) - Math.log(lo) : 1;
    return function (s) {
      const t = s > 0 && isFinite(lo) ? (Math.log(s) - Math.log(lo)) / span : 0;
      return "hsl(" + Math.round(220 - 220 * t) + ",70%,55%)";
    };
  }
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const isTrace = data.kind === "trace";

  function renderMeta() {
    let html = "sources: " + data.sources.map(esc).join(", ") + " &middot; unimem " + esc(data.unimem_version);
    if (isTrace) {
      const t = data.trace;
      html += "<br>device " + esc(data.device) + " &middot; " + t.events + " events (" + t.allocations +
        " allocations, " + t.frees + " frees) &middot; peak live " + bytes(t.peak_live_bytes) + " at event " +
        t.peak_event;
    }
    for (const f of data.failed_requests || []) {
      html += "<br><span class=\"note\">failed request in " + esc(f.source) + ": " + bytes(f.bytes) + " on " +
        esc(f.device.name) + " " + esc(f.stack) + ": " + esc(f.message) + "</span>";
    }
    document.getElementById("meta").innerHTML = html;
  }

  function renderSummary() {
    const rows = [
      ["peak live", function (s) { return bytes(s.summary.peak_live_bytes); }],
      ["peak reserved", function (s) { return s.summary.peak_reserved_bytes === undefined ? "-" : bytes(s.summary.peak_reserved_bytes); }],
      ["reserved / live", function (s) { return s.summary.fragmentation_ratio.toFixed(3); }],
      ["map at", function (s) { return s.map_event === null ? "snapshot" : "event " + s.map_event + " (" + esc(s.map_reason) + ")"; }],
      ["reserved at map", function (s) { return bytes(s.summary.reserved_bytes_at_map); }],
      ["in use at map", function (s) { return bytes(s.summary.in_use_bytes_at_map); }],
      ["largest free range at map", function (s) { return bytes(s.summary.largest_free_range_at_map); }],
      ["failed allocations", function (s) { return s.failed_allocations === undefined ? "-" : String(s.failed_allocations); }],
    ];
    let html = "<table><tr><th></th>" + data.stacks.map(function (s) { return "<th>" + esc(s.name) + "</th>"; }).join("") + "</tr>";
    for (const [label, cell] of rows) {
      html += "<tr><td>" + label + "</td>" + data.stacks.map(function (s) { return "<td>" + cell(s) + "</td>"; }).join("") + "</tr>";
    }
    document.getElementById("summary").innerHTML = html + "</table>";
  }

  // One chart per stack: min-max bands per bucket (so every peak shows), the trace's peak and the failures marked.
  function renderTimelines() {
    const box = document.getElementById("timelines");
    if (!isTrace) { box.innerHTML = "<p class=\"meta\">Snapshots hold one moment each: no timeline.</p>"; return; }
    const W = 1200, H = 180, left = 70, top = 8, bottom = 20;
    const events = Math.max(1, data.trace.events - 1);
    let html = "";
    for (const s of data.stacks) {
      const t = s.timeline;
      let ymax = 1;
      for (const v of t.reserved_max) ymax = Math.max(ymax, v);
      for (const v of t.live_max) ymax = Math.max(ymax, v);
      const x = function (e) { return left + (W - left - 10) * e / events; };
      const y = function (v) { return top + (H - top - bottom) * (1 - v / ymax); };
      const band = function (lo, hi) {
        const n = t.first_event.length;
        const pts = [];
        for (let i = 0; i < n; ++i) pts.push(x(t.first_event[i]).toFixed(1) + "," + y(hi[i]).toFixed(1));
        for (let i = n - 1; i >= 0; --i) pts.push(x(t.first_event[i]).toFixed(1) + "," + y(lo[i]).toFixed(1));
        return pts.join(" ");
      };
      let svg = "<svg class=\"timeline\" width=\"" + W + "\" height=\"" + H + "\">";
      svg += "<line x1=\"" + left + "\" y1=\"" + y(0) + "\" x2=\"" + (W - 10) + "\" y2=\"" + y(0) + "\" stroke=\"#999\"/>";
      svg += "<text x=\"2\" y=\"" + (top + 10) + "\" font-size=\"11\">" + bytes(ymax) + "</text>";
      svg += "<text x=\"2\" y=\"" + y(0) + "\" font-size=\"11\">0</text>";
      svg += "<polygon class=\"reserved\" points=\"" + band(t.reserved_min, t.reserved_max) + "\" fill=\"rgba(230,140,40,0.35)\" stroke=\"rgb(230,140,40)\" stroke-width=\"1\"><title>reserved bytes</title></polygon>";
      svg += "<polygon class=\"live\" points=\"" + band(t.live_min, t.live_max) + "\" fill=\"rgba(40,100,220,0.35)\" stroke=\"rgb(40,100,220)\" stroke-width=\"1\"><title>live bytes</title></polygon>";
      for (const e of s.failed_events) {
        svg += "<line class=\"failure-marker\" data-event=\"" + e + "\" x1=\"" + x(e) + "\" x2=\"" + x(e) + "\" y1=\"" + top + "\" y2=\"" + y(0) + "\" stroke=\"#c00\" stroke-width=\"1\"><title>failed allocation at event " + e + "</title></line>";
      }
      const p = data.trace.peak_event;
      svg += "<line class=\"peak-marker\" data-event=\"" + p + "\" x1=\"" + x(p) + "\" x2=\"" + x(p) + "\" y1=\"" + top + "\" y2=\"" + y(0) + "\" stroke=\"#111\" stroke-dasharray=\"4,3\"><title>peak live " + bytes(data.trace.peak_live_bytes) + " at event " + p + "</title></line>";
      svg += "<text x=\"" + (x(p) + 4) + "\" y=\"" + (top + 10) + "\" font-size=\"11\">peak (event " + p + ")</text>";
      svg += "<text x=\"" + left + "\" y=\"" + (H - 4) + "\" font-size=\"11\">event 0</text>";
      svg += "<text x=\"" + (W - 10) + "\" y=\"" + (H - 4) + "\" font-size=\"11\" text-anchor=\"end\">event " + events + "</text>";
      svg += "</svg>";
      html += "<h3>" + esc(s.name) + " <span class=\"meta\">(blue: live, orange: reserved, red: failed allocations, " +
        s.failed_allocations + " in all)</span></h3>" + svg;
    }
    box.innerHTML = html;
  }

  // One bar per segment, full width; ranges proportional to their size within it.
  function renderMaps() {
    const box = document.getElementById("maps");
    let html = "";
    for (const s of data.stacks) {
      html += "<h3>" + esc(s.name) + (s.map_event === null ? "" : " <span class=\"meta\">at event " + s.map_event + " (" + esc(s.map_reason) + ")</span>") + "</h3>";
      if (s.pool === null) { html += "<p class=\"note\">" + esc(s.pool_note || "no pool") + "</p>"; continue; }
      const segments = s.pool.segments;
      const sizes = [];
      for (const seg of segments) for (const r of seg.ranges) if (r.allocated) sizes.push(r.size);
      const colour = colourScale(sizes);
      const W = 1200, label = 190, row = 14, gap = 3;
      const H = Math.max(1, segments.length * (row + gap));
      let svg = "<svg class=\"segment-map\" data-segments=\"" + segments.length + "\" width=\"" + W + "\" height=\"" + H + "\">";
      segments.forEach(function (seg, k) {
        const y0 = k * (row + gap);
        const scale = (W - label) / Math.max(1, seg.size);
        svg += "<g class=\"segment-bar\" data-segment=\"" + seg.id + "\">";
        svg += "<text x=\"0\" y=\"" + (y0 + 11) + "\" font-size=\"11\">#" + seg.id + " " + bytes(seg.size) + " " + esc(seg.pool) + "</text>";
        svg += "<rect x=\"" + label + "\" y=\"" + y0 + "\" width=\"" + (W - label) + "\" height=\"" + row + "\" fill=\"#e8e8e8\" stroke=\"#bbb\"><title>segment " + seg.id + ": " + bytes(seg.size) + "</title></rect>";
        for (const r of seg.ranges) {
          const w = Math.max(0.5, r.size * scale);
          const title = (r.allocated ? "allocated " + bytes(r.requested) + " requested, " + bytes(r.size) + " held" +
            (r.tag ? ", tag " + esc(r.tag) : "") + (r.allocation_id ? ", id " + r.allocation_id : "")
            : "free " + bytes(r.size) + (r.stream ? ", pending on stream " + r.stream : "")) +
            " at offset " + r.offset;
          svg += "<rect class=\"" + (r.allocated ? "range-allocated" : "range-free") + "\" x=\"" + (label + r.offset * scale).toFixed(2) +
            "\" y=\"" + y0 + "\" width=\"" + w.toFixed(2) + "\" height=\"" + row + "\" fill=\"" +
            (r.allocated ? colour(r.size) : "#e8e8e8") + "\" stroke=\"" + (r.allocated ? "#fff" : "none") + "\" stroke-width=\"0.5\"><title>" + title + "</title></rect>";
        }
        svg += "</g>";
      });
      html += svg + "</svg>";
      if (segments.length === 0) html += "<p class=\"meta\">no segments</p>";
    }
    box.innerHTML = html;
  }

  function renderLargest() {
    let html = "";
    for (const s of data.stacks) {
      html += "<h3>" + esc(s.name) + "</h3><table><tr><th>#</th><th>bytes</th>" +
        (isTrace ? "<th>start event</th><th>end event</th>" : "<th>segment</th><th>offset</th><th>tag</th><th>age (s)</th>") + "</tr>";
      s.largest.forEach(function (a, k) {
        html += "<tr><td>" + (k + 1) + "</td>";
        if (isTrace) {
          html += "<td>" + bytes(a.bytes) + "</td><td>" + a.start_event + "</td><td>" + (a.end_event === null ? "never freed" : a.end_event) + "</td>";
        } else {
          html += "<td>" + bytes(a.requested || a.size) + "</td><td>" + a.segment + "</td><td>" + a.offset + "</td><td>" +
            esc(a.tag || "") + "</td><td>" + (a.age_seconds === null || a.age_seconds === undefined ? "-" : a.age_seconds.toFixed(3)) + "</td>";
        }
        html += "</tr>";
      });
      html += "</table>";
    }
    document.getElementById("largest").innerHTML = html;
  }

  try {
    renderMeta();
    renderSummary();
    renderTimelines();
    renderMaps();
    renderLargest();
    if (!document.body.hasAttribute("data-status")) document.body.setAttribute("data-status", "ok");
    // Milliseconds from navigation to drawn, for docs/cli.md's load-time figures.
    document.body.setAttribute("data-render-ms", performance.now().toFixed(0));
  } catch (e) {
    fail("error: " + e.message);
  }
})();
</script>
</body>
</html>
)page";

}  // namespace

std::string report_page(const nlohmann::json& data) {
  // "</" would end the script element early; JSON allows "<\/" for it.
  std::string json = data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  for (std::size_t at = json.find("</"); at != std::string::npos; at = json.find("</", at + 3))
    json.replace(at, 2, "<\\/");
  std::string page(kTemplate);
  page.replace(page.find(kDataMarker), kDataMarker.size(), json);
  return page;
}

}  // namespace unimem::cli
