/* planner map: draws the layers of planner's map.html from compact JSON blocks.
 * Part of planner (MIT). Needs Leaflet 1.9 and Leaflet.markercluster 1.5.
 * Python (planner/maps.py) prepares every value; this file only draws.
 */
(function () {
  "use strict";

  var P = { layers: { facilities: {} }, config: null, map: null, typeIndex: null, listeners: [] };

  function esc(value) {
    return String(value === null || value === undefined ? "" : value).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;" }[c];
    });
  }

  function pct(value) {
    return value === null || value === undefined ? "–" : Math.round(value * 100) + "%";
  }

  function num(value) {
    if (value === null || value === undefined) return "–";
    return String(Math.round(value)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }

  function icon(scene, size) {
    size = size || 14;
    return '<svg class="pl-icon" viewBox="0 0 16 16" width="' + size + '" height="' + size +
      '"><path d="' + scene.icon + '"/></svg>';
  }

  function badge(scene) {
    return '<span class="pl-badge" style="background:' + scene.colour + '">' + icon(scene, 12) + "</span>";
  }

  /** MultiPolygons from planner.maps.encode_polygons: delta-coded integers + ragged offsets. */
  function decodePolygons(e) {
    var n = e.c.length / 2, xs = new Array(n), ys = new Array(n), x = 0, y = 0, i;
    for (i = 0; i < n; i++) {
      x += e.c[2 * i];
      y += e.c[2 * i + 1];
      xs[i] = x / e.s;
      ys[i] = y / e.s;
    }
    var geometries = [];
    for (var g = 0; g + 1 < e.m.length; g++) {
      var polygons = [];
      for (var p = e.m[g]; p < e.m[g + 1]; p++) {
        var rings = [];
        for (var r = e.p[p]; r < e.p[p + 1]; r++) {
          var ring = [];
          for (var k = e.r[r]; k < e.r[r + 1]; k++) ring.push([xs[k], ys[k]]);
          rings.push(ring);
        }
        polygons.push(rings);
      }
      geometries.push({ type: "MultiPolygon", coordinates: polygons });
    }
    return geometries;
  }

  /** MultiLineStrings from planner.map_data.encode_lines (k = "l"): delta-coded + offsets. */
  function decodeLines(e) {
    var n = e.c.length / 2, x = 0, y = 0, points = new Array(n), i;
    for (i = 0; i < n; i++) {
      x += e.c[2 * i];
      y += e.c[2 * i + 1];
      points[i] = [x / e.s, y / e.s];
    }
    var geometries = [];
    for (var g = 0; g + 1 < e.m.length; g++) {
      var lines = [];
      for (var l = e.m[g]; l < e.m[g + 1]; l++) lines.push(points.slice(e.r[l], e.r[l + 1]));
      geometries.push({ type: "MultiLineString", coordinates: lines });
    }
    return geometries;
  }

  /** Hexagons from planner.map_data.encode_hexagons (k = "h"): centres + one corner template. */
  function decodeHexagons(e) {
    var n = e.c.length / 2, x = 0, y = 0, geometries = new Array(n);
    for (var i = 0; i < n; i++) {
      x += e.c[2 * i];
      y += e.c[2 * i + 1];
      var cx = x / e.s, cy = y / e.s, ring = e.o.map(function (o) { return [cx + o[0], cy + o[1]]; });
      ring.push(ring[0]);
      geometries[i] = { type: "Polygon", coordinates: [ring] };
    }
    return geometries;
  }

  /** Rows of a columnar block {e: encoded shapes, p: {column: [value...]}} as GeoJSON features. */
  function features(data) {
    var keys = Object.keys(data.p || {});
    var decode = data.e.k === "l" ? decodeLines : data.e.k === "h" ? decodeHexagons : decodePolygons;
    return decode(data.e).map(function (geometry, i) {
      var properties = {};
      keys.forEach(function (key) { properties[key] = data.p[key][i]; });
      return { type: "Feature", geometry: geometry, properties: properties };
    });
  }

  P.decodePolygons = decodePolygons;
  P.decodeLines = decodeLines;
  P.decodeHexagons = decodeHexagons;

  P.data = function (id) {
    return JSON.parse(document.getElementById(id).textContent);
  };

  P.configure = function (map, options) {
    var config = P.data(options.data);
    P.map = map;
    P.config = config;
    // Service areas (no pointer events) lie under one canvas that draws every
    // interactive shape and finds the topmost one under the mouse; markers sit
    // above in Leaflet's marker pane. Nothing that ignores the mouse lies above
    // something that wants it, so every click reaches a feature.
    map.createPane("pl-areas").style.zIndex = 350;
    map.getPane("pl-areas").style.pointerEvents = "none";
    P.areaCanvas = L.canvas({ pane: "pl-areas", padding: 0.3 });
    map.createPane("pl-shapes").style.zIndex = 410;
    P.canvas = L.canvas({ pane: "pl-shapes", padding: 0.3, tolerance: 3 });
    L.control.scale({ imperial: false, position: "bottomleft" }).addTo(map);
    map.attributionControl.setPrefix(
      '<a href="https://leafletjs.com" title="A JavaScript library for interactive maps">Leaflet</a>');
    map.on("overlayadd overlayremove", function () { P.restack(); P.updateLegend(); });
  };

  /** Drawing order on the shared canvas, bottom to top. */
  var STACK = ["communities", "missingCells", "gapResidences", "premises"];

  P.restack = function () {
    STACK.forEach(function (name) {
      var layer = P.layers[name];
      if (layer && P.map.hasLayer(layer)) layer.bringToFront();
    });
  };

  P.hasData = function (typeIndex) {
    return !P.config.hasData || P.config.hasData[typeIndex] !== false;
  };

  P.onType = function (listener) {
    P.listeners.push(listener);
    if (P.typeIndex !== null) listener(P.typeIndex);
  };

  P.setType = function (index) {
    P.typeIndex = index;
    P.listeners.forEach(function (listener) { listener(index); });
    if (P.map) P.restack();
  };

  function typeLabel(index) {
    var t = P.config.types[index];
    return t.label + " (" + num(t.threshold) + " m)";
  }

  // ------------------------------------------------------------------ communities

  function fixed(value, digits) {
    return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
  }

  /** A share sent as whole percent (coverage per type and scene) as 0–1. */
  function share(percent) {
    return percent === null || percent === undefined ? percent : percent / 100;
  }

  function communityPopup(p) {
    var cfg = P.config, s = cfg.strings, html = [];
    html.push('<div class="pl-title">' + esc(p.name) + ' <span class="pl-muted">' + esc(p.id) + "</span></div>");
    html.push("<div>" + s.population + ": " + num(p.population) + " · " + s.score + ": <b>" +
      pct(p.score) + "</b></div>");
    var extra = [];
    if (p.scoreData !== undefined) extra.push(s.scoreData + ": <b>" + pct(p.scoreData) + "</b>");
    if (p.typesData !== undefined) extra.push(s.typesData + ": " + num(p.typesData));
    if (p.detour !== undefined) extra.push(s.detour + ": " + fixed(p.detour, 2));
    if (extra.length) html.push('<div class="pl-extra">' + extra.join(" · ") + "</div>");
    html.push('<table class="pl-table"><thead><tr><th>' + s.type + "</th><th>" + s.threshold +
      "</th><th>" + s.coverage + "</th></tr></thead><tbody>");
    cfg.scenes.forEach(function (scene, sceneIndex) {
      html.push('<tr class="pl-scene"><th colspan="2">' + badge(scene) + " " + esc(scene.label) +
        "</th><th>" + pct(share(p.scenes[sceneIndex])) + "</th></tr>");
      cfg.types.forEach(function (t, typeIndex) {
        if (t.scene !== sceneIndex) return;
        var value = share(p.cov[typeIndex]), cls = "", shown = pct(value);
        if (!P.hasData(typeIndex)) {
          cls = ' class="pl-nodata"';
          shown = s.noData;
        } else if (value === 0) {
          cls = ' class="pl-missing"';
          shown = s.missing;
        }
        html.push("<tr" + cls + "><td>" + esc(t.label) + "</td><td>" + num(t.threshold) +
          " m</td><td>" + shown + "</td></tr>");
      });
    });
    html.push("</tbody></table>");
    return html.join("");
  }

  P.communities = function (data) {
    var layer = L.geoJSON(features(data), {
      renderer: P.canvas,
      style: function (f) {
        return { color: "#333", weight: 1.5, fillColor: f.properties.fill, fillOpacity: 0.35 };
      },
      onEachFeature: function (f, l) {
        l.bindPopup(function () { return communityPopup(f.properties); },
          { maxWidth: 480, minWidth: 300, maxHeight: 380, className: "pl-popup" });
        l.bindTooltip(esc(f.properties.name || f.properties.id) + " · " + P.config.strings.score +
          " " + pct(f.properties.score), { sticky: true, className: "pl-tooltip" });
      }
    });
    P.layers.communities = layer;
    return layer;
  };

  // ------------------------------------------------------------------ facilities

  function facilityPopup(data, i, scene) {
    var cfg = P.config, s = cfg.strings;
    // how each type matched: an index into data.mk (tag, name, list)
    var matches = data.m[i].map(function (m) { return data.mk ? data.mk[m] : m; });
    var types = data.t[i].map(function (t, k) {
      return esc(cfg.types[t].label) + ' <span class="pl-muted">(' + esc(s.match[matches[k]] || matches[k]) + ")</span>";
    });
    return '<div class="pl-title">' + (data.n[i] ? esc(data.n[i]) : '<span class="pl-muted">' + s.unnamed + "</span>") +
      "</div><table class=\"pl-table pl-kv\"><tr><th>" + s.type + "</th><td>" + types.join("<br>") +
      "</td></tr><tr><th>" + s.scene + "</th><td>" + badge(scene) + " " + esc(scene.label) +
      "</td></tr><tr><th>" + s.matched + "</th><td>" + matches.map(function (m) {
        return esc(s.match[m] || m);
      }).filter(function (v, k, all) { return all.indexOf(v) === k; }).join(", ") +
      "</td></tr><tr><th>id</th><td>" + esc(data.id[i]) + "</td></tr></table>";
  }

  /** Popup of a city-scale square (planner.map_data.aggregated_facilities): types and counts. */
  function squarePopup(data, i, scene) {
    var cfg = P.config, s = cfg.strings, pairs = data.t[i], rows = [];
    for (var k = 0; k + 1 < pairs.length; k += 2) {
      rows.push("<tr><td>" + esc(cfg.types[pairs[k]].label) + "</td><td>" + num(pairs[k + 1]) + "</td></tr>");
    }
    return '<div class="pl-title">' + badge(scene) + " " + esc(scene.label) + "</div><div>" +
      esc(s.square.replace("{n}", num(data.n[i])).replace("{m}", num(data.g.m))) +
      '</div><table class="pl-table"><thead><tr><th>' + s.type + "</th><th>" + s.count +
      "</th></tr></thead><tbody>" + rows.join("") + "</tbody></table>";
  }

  /** One marker per square of the grid, labelled with its number of facilities. */
  function squareMarkers(data, scene) {
    var g = data.g, i = 0, j = 0, markers = new Array(data.n.length);
    for (var k = 0; k < data.n.length; k++) {
      i += g.c[2 * k];
      j += g.c[2 * k + 1];
      markers[k] = L.marker([(j + 0.5) * g.dy, (i + 0.5) * g.dx], {
        icon: L.divIcon({
          html: '<div style="background:' + scene.colour + '">' + data.n[k] + "</div>",
          className: "pl-marker pl-square", iconSize: [24, 24], iconAnchor: [12, 12], popupAnchor: [0, -10]
        }),
        title: String(data.n[k]), count: data.n[k]
      }).bindPopup(squarePopup.bind(null, data, k, scene), { className: "pl-popup" });
    }
    return markers;
  }

  P.facilities = function (data, options) {
    var scene = P.config.scenes[options.scene];
    var group = L.markerClusterGroup({
      maxClusterRadius: 60, disableClusteringAtZoom: 18, showCoverageOnHover: false,
      spiderfyOnMaxZoom: true, chunkedLoading: true,
      iconCreateFunction: function (cluster) {
        // a cluster of squares shows the facilities in them, not the number of squares
        var count = data.g ? cluster.getAllChildMarkers().reduce(function (sum, m) {
          return sum + m.options.count;
        }, 0) : cluster.getChildCount();
        return L.divIcon({
          html: '<div style="background:' + scene.colour + '">' + count + "</div>",
          className: "pl-cluster", iconSize: [28, 28]
        });
      }
    });
    if (data.g) {
      group.addLayers(squareMarkers(data, scene));
      P.layers.facilities[scene.id] = group;
      return group;
    }
    var marker = L.divIcon({
      html: '<div style="background:' + scene.colour + '">' + icon(scene, 12) + "</div>",
      className: "pl-marker", iconSize: [20, 20], iconAnchor: [10, 10], popupAnchor: [0, -8]
    });
    group.addLayers(data.x.map(function (x, i) {
      return L.marker([data.y[i], x], { icon: marker, title: data.n[i] || "", facilityId: data.id[i] })
        .bindPopup(function () { return facilityPopup(data, i, scene); }, { className: "pl-popup" });
    }));
    P.layers.facilities[scene.id] = group;
    return group;
  };

  // ------------------------------------------------------------------ service areas and gaps

  /** City-scale service areas: grid squares holding a street within reach, a bitmask per type. */
  function areaCells(data) {
    var g = data.g, n = g.c.length / 2, x = 0, y = 0, centres = new Array(n), byType = {};
    for (var i = 0; i < n; i++) {
      x += g.c[2 * i];
      y += g.c[2 * i + 1];
      centres[i] = [y / g.s, x / g.s];
    }
    // a bitmask per type: base64 (b64) or, from older pages' data, hex (b)
    data.p.t.forEach(function (t, k) { byType[t] = data.p.b64 ? atob(data.p.b64[k]) : data.p.b[k]; });
    var flagged = data.p.b64 ? function (bits, c) { return (bits.charCodeAt(c >> 3) >> (7 - (c & 7))) & 1; }
      : function (bits, c) { return (parseInt(bits.substr(2 * (c >> 3), 2), 16) >> (7 - (c & 7))) & 1; };
    var layer = L.featureGroup();
    P.onType(function (index) {
      layer.clearLayers();
      var bits = byType[index];
      if (!bits) return;
      var colour = P.config.scenes[P.config.types[index].scene].colour;
      for (var c = 0; c < n; c++) {
        if (flagged(bits, c)) {
          var lat = centres[c][0], lon = centres[c][1];
          L.rectangle([[lat - g.hy, lon - g.hx], [lat + g.hy, lon + g.hx]], {
            pane: "pl-areas", interactive: false, renderer: P.areaCanvas, stroke: false,
            fillColor: colour, fillOpacity: 0.35
          }).addTo(layer);
        }
      }
    });
    P.layers.serviceAreas = layer;
    return layer;
  }

  P.serviceAreas = function (data) {
    if (data.g) return areaCells(data);
    var byType = {};
    features(data).forEach(function (f) { byType[f.properties.t] = f; });
    var layer = L.geoJSON(null, {
      pane: "pl-areas", interactive: false,
      style: function (f) {
        var colour = P.config.scenes[P.config.types[f.properties.t].scene].colour;
        if (f.geometry.type === "MultiLineString") {  // the streets within reach
          return { color: colour, weight: 5, opacity: 0.55, lineCap: "round", lineJoin: "round" };
        }
        return { color: colour, weight: 1.2, fillColor: colour, fillOpacity: 0.3 };
      }
    });
    P.onType(function (index) {
      layer.clearLayers();
      if (byType[index]) layer.addData(byType[index]);
    });
    P.layers.serviceAreas = layer;
    return layer;
  };

  P.gapResidences = function (data) {
    var s = P.config.strings, layer = L.featureGroup();
    P.onType(function (index) {
      layer.clearLayers();
      var gap = data.gaps[index];
      if (!gap) return;
      var t = P.config.types[index];
      gap[0].forEach(function (r, k) {
        var distance = gap[1][k];
        L.circleMarker([data.y[r], data.x[r]], {
          renderer: P.canvas, radius: Math.min(2.5 + 1.5 * Math.sqrt(data.p[r] / 100), 7),
          color: "#49006a", weight: 0.8, fillColor: "#dd3497", fillOpacity: 0.8
        }).bindPopup(
          '<div class="pl-title">' + s.residence + ' <span class="pl-muted">' + esc(data.id[r]) +
          "</span></div><div>" + s.population + ": " + num(data.p[r]) + "</div><div>" +
          esc(t.label) + ": " + (distance === null ? s.beyondLimit.replace("{m}", num(2 * t.threshold))
            : s.nearestAt.replace("{m}", num(distance))) + " (" + s.threshold + " " +
          num(t.threshold) + " m)</div>", { className: "pl-popup" }).addTo(layer);
      });
    });
    P.layers.gapResidences = layer;
    return layer;
  };

  function cellPopup(p) {
    var cfg = P.config, s = cfg.strings;
    var missing = cfg.types.filter(function (t, i) {
      return P.hasData(i) && (parseInt(p.m.substr(2 * (i >> 3), 2), 16) >> (7 - (i & 7))) & 1;
    }).map(function (t) { return esc(t.label); });
    return '<div class="pl-title">' + s.cell + ' <span class="pl-muted">' + esc(p.id) + "</span></div>" +
      "<div>" + s.population + ": " + num(p.population) + " · " + s.residences + ": " + p.residences +
      "</div><div>" + s.meanMissing + ": " + p.mean + "</div><div><b>" + s.missingTypes + " (" + p.n +
      ")</b>: " + (missing.length ? missing.join(", ") : "–") + "</div>";
  }

  P.missingCells = function (data) {
    if (data.qr) {  // "q_r" ids sent as delta-coded integers
      var q = 0, r = 0, ids = new Array(data.qr.length / 2);
      for (var k = 0; k < ids.length; k++) {
        q += data.qr[2 * k];
        r += data.qr[2 * k + 1];
        ids[k] = q + "_" + r;
      }
      data.p.id = ids;
    }
    var layer = L.geoJSON(features(data), {
      renderer: P.canvas,
      style: function (f) {
        var fill = data.colours ? data.colours[f.properties.f] : f.properties.fill;
        return { color: "#444", weight: 0.5, fillColor: fill, fillOpacity: 0.65 };
      },
      onEachFeature: function (f, l) {
        l.bindPopup(function () { return cellPopup(f.properties); }, { maxWidth: 360, className: "pl-popup" });
        l.bindTooltip(P.config.strings.missingTypes + ": " + f.properties.n, { sticky: true, className: "pl-tooltip" });
      }
    });
    P.layers.missingCells = layer;
    return layer;
  };

  // ------------------------------------------------------------------ premises and candidate sites

  P.premises = function (data) {
    var layer = L.featureGroup();
    data.x.forEach(function (x, i) {
      L.circleMarker([data.y[i], x], {
        renderer: P.canvas, radius: 7, color: "#333", weight: 1.2,
        fillColor: data.colour[i] || "#fd8d3c", fillOpacity: 0.9
      }).bindPopup('<div class="pl-popup-premises">' + (data.popup[i] || esc(data.id[i])) + "</div>",
        { className: "pl-popup" })
        .bindTooltip(esc(data.id[i]) + (data.label[i] ? " · " + esc(data.label[i]) : ""),
          { className: "pl-tooltip" })
        .addTo(layer);
    });
    P.layers.premises = layer;
    return layer;
  };

  // P.candidates: planner_candidates.js, inlined only in maps with candidates

  // ------------------------------------------------------------------ controls

  P.typePicker = function (options) {
    var s = P.config.strings;
    var Picker = L.Control.extend({
      options: { position: "topleft" },
      onAdd: function () {
        var div = L.DomUtil.create("div", "pl-picker leaflet-bar");
        var label = L.DomUtil.create("label", "", div);
        label.textContent = s.chosenType;
        var select = L.DomUtil.create("select", "", div);
        select.id = "pl-type";
        options.order.forEach(function (index) {
          var option = document.createElement("option");
          option.value = index;
          option.textContent = typeLabel(index) + " — " + (P.hasData(index) ?
            s.uncovered.replace("{n}", num(options.uncovered[index])) : s.noData);
          select.appendChild(option);
        });
        select.value = options.initial;
        L.DomEvent.disableClickPropagation(div);
        L.DomEvent.disableScrollPropagation(div);
        L.DomEvent.on(select, "change", function () { P.setType(Number(select.value)); });
        return div;
      }
    });
    new Picker().addTo(P.map);
    P.setType(options.initial);
  };

  P.legend = function (options) {
    var cfg = P.config, s = cfg.strings;
    var Legend = L.Control.extend({
      options: { position: "bottomleft" },
      onAdd: function () {
        var div = L.DomUtil.create("div", "pl-legend");
        var stops = cfg.scoreStops.join(",");
        var cells = options.cellClasses.map(function (c) {
          return '<span class="pl-class"><i style="background:' + c[1] + '"></i>' + esc(c[0]) + "</span>";
        }).join("");
        var cellsTitle = cfg.hasData && cfg.hasData.indexOf(false) >= 0 ? s.cellsData : s.cellsTitle;
        div.innerHTML = '<div class="pl-title">' + esc(cfg.title) + "</div>" +
          '<div data-layer="communities"><b>' + s.communityScore + "</b>" +
          '<div class="pl-ramp" style="background:linear-gradient(to right,' + stops + ')"></div>' +
          '<div class="pl-ramp-labels"><span>0%</span><span>50%</span><span>100%</span></div></div>' +
          '<div data-layer="serviceAreas" class="pl-area-row"><i class="pl-area-swatch"></i><span>' +
          s.serviceArea + ': <span class="pl-current-type"></span></span></div>' +
          '<div data-layer="gapResidences"><i class="pl-dot"></i>' + s.gapResidences + "</div>" +
          '<div data-layer="missingCells"><b>' + cellsTitle + '</b><div class="pl-classes">' + cells + "</div></div>" +
          '<div data-layer="premises"><i class="pl-dot pl-premises-dot"></i>' + s.premisesLegend + "</div>" +
          '<div data-layer="candidates"><span class="pl-rank-inline">1</span> ' + s.candidateLegend + "</div>" +
          '<div class="pl-muted pl-note">' + esc(options.note) + "</div>";
        L.DomEvent.disableClickPropagation(div);
        L.DomEvent.disableScrollPropagation(div);
        return div;
      }
    });
    var control = new Legend().addTo(P.map);
    P.legendControl = control;
    P.onType(function (index) {
      var container = control.getContainer();
      container.querySelector(".pl-current-type").textContent = typeLabel(index);
      var colour = cfg.scenes[cfg.types[index].scene].colour;
      container.querySelector(".pl-area-swatch").style.background = colour;
    });
    P.updateLegend();
  };

  /** Show the legend entries of the layers on the map, and only those. */
  P.updateLegend = function () {
    if (!P.legendControl) return;
    var rows = P.legendControl.getContainer().querySelectorAll("[data-layer]");
    Array.prototype.forEach.call(rows, function (row) {
      var layer = P.layers[row.getAttribute("data-layer")];
      row.style.display = layer && P.map.hasLayer(layer) ? "" : "none";
    });
  };

  /** After every layer and control: the drawing order and the legend. */
  P.finish = function () {
    P.restack();
    P.updateLegend();
  };

  window.planner = P;
})();
