/* planner map: candidate sites that follow the type picker (part of planner, MIT).
 * Inlined after planner_map.js only in maps with candidates; replaces planner.candidates.
 * The chosen type's sites are numbered by their rank; for a type nobody ranked,
 * the best (lowest-ranked) site of each ranked type is shown with its type's label.
 */
(function (P) {
  "use strict";

  function esc(value) {
    return String(value === null || value === undefined ? "" : value).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;" }[c];
    });
  }

  function num(value) {
    if (value === null || value === undefined) return "–";
    return String(Math.round(value)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }

  /** The popup of site i; ``types``: the labels of every type whose best site it is. */
  function candidatePopup(data, i, types) {
    var s = P.config.strings, rows = data.gains[i].map(function (g) {
      return "<tr><td>" + esc(g[0]) + "</td><td>+" + num(g[1]) + "</td></tr>";
    }).join("");
    return '<div class="pl-title"><span class="pl-rank-inline">' + data.rank[i] + "</span> " +
      esc(data.label[i]) + "</div>" +
      '<table class="pl-table pl-kv"><tr><th>' + s.rank + "</th><td>" + data.rank[i] + "</td></tr>" +
      "<tr><th>" + s.type + "</th><td>" + (types || [data.type[i]]).map(esc).join("<br>") + "</td></tr>" +
      (data.kind[i] ? "<tr><th>" + s.kind + "</th><td>" + esc(data.kind[i]) + "</td></tr>" : "") +
      (data.community[i] ? "<tr><th>" + s.community + "</th><td>" + esc(data.community[i]) + "</td></tr>" : "") +
      "</table><div><b>" + s.added + "</b></div>" +
      '<table class="pl-table">' + rows + "</table>";
  }

  /** Before " / " (or "（"): "社区服务站 / 居委会" → "社区服务站". */
  function short(label) {
    return String(label).split(" / ")[0].split("（")[0].split(" (")[0];
  }

  function marker(data, i, types) {
    var rank = data.rank[i];
    var icon = types ? L.divIcon({
      html: "<div><b>" + rank + "</b> " + types.map(function (t) { return esc(short(t)); })
        .join(P.config.lang === "zh" ? "、" : ", ") + "</div>", className: "pl-rank-best",
      iconSize: null, iconAnchor: [12, 12], popupAnchor: [0, -10]
    }) : L.divIcon({ html: "<div>" + rank + "</div>", className: "pl-rank",
      iconSize: [24, 24], iconAnchor: [12, 12], popupAnchor: [0, -10] });
    return L.marker([data.y[i], data.x[i]], {
      icon: icon, title: types ? types.join(" · ") + " · " + data.label[i] : data.label[i],
      riseOnHover: true, zIndexOffset: 1000 - rank
    }).bindPopup(function () { return candidatePopup(data, i, types); },
      { className: "pl-popup", minWidth: 220 });
  }

  /** Rows per type index, and the best-ranked row of each type, one per place (with its types). */
  function groups(data) {
    var byType = {}, best = {}, order = [], places = {}, sites = [];
    data.x.forEach(function (x, i) {
      var t = data.t ? data.t[i] : null, key = data.type[i];
      if (t !== null && t !== undefined) (byType[t] = byType[t] || []).push(i);
      if (!(key in best)) order.push(key);
      if (!(key in best) || data.rank[i] < data.rank[best[key]]) best[key] = i;
    });
    // one marker per place: the same site is often the best of several types
    order.forEach(function (key) {
      var i = best[key], place = data.x[i] + "," + data.y[i];
      if (!(place in places)) {
        places[place] = sites.length;
        sites.push({ row: i, types: [] });
      }
      sites[places[place]].types.push(key);
    });
    return { byType: byType, best: sites };
  }

  function updateLegend(options, index, best) {
    if (!P.legendControl || !options.strings) return;
    var row = P.legendControl.getContainer().querySelector('[data-layer="candidates"]');
    if (!row) return;
    var s = options.strings, type = esc(P.config.types[index].label);
    row.innerHTML = (best ? '<span class="pl-rank-inline pl-rank-best-inline">1</span> ' + s.legendBest
      : '<span class="pl-rank-inline">1</span> ' + s.legendType).replace("{type}", type);
  }

  P.candidates = function (data, options) {
    var layer = L.featureGroup(), found = groups(data);
    P.onType(function (index) {
      layer.clearLayers();
      var rows = found.byType[index];
      if (rows) rows.forEach(function (i) { marker(data, i, null).addTo(layer); });
      else found.best.forEach(function (site) { marker(data, site.row, site.types).addTo(layer); });
      updateLegend(options || {}, index, !rows);
    });
    P.layers.candidates = layer;
    return layer;
  };
})(window.planner);
