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

  /** Rows of a columnar block {e: encoded polygons, p: {column: [value...]}} as GeoJSON features. */
  function features(data) {
    var keys = Object.keys(data.p || {});
    return decodePolygons(data.e).map(function (geometry, i) {
      var properties = {};
      keys.forEach(function (key) { properties[key] = data.p[key][i]; });
      return { type: "Feature", geometry: geometry, properties: properties };
    });
  }

  P.decodePolygons = decodePolygons;

  P.data = function (id) {
    return JSON.parse(document.getElementById(id).textContent);
  };

  P.configure = function (map, options) {
    var config = P.data(options.data);
    P.map = map;
    P.config = config;
    [["pl-communities", 380], ["pl-cells", 390], ["pl-areas", 400], ["pl-residences", 450]]
      .forEach(function (pane) { map.createPane(pane[0]).style.zIndex = pane[1]; });
    map.getPane("pl-areas").style.pointerEvents = "none";
    P.canvas = L.canvas({ pane: "pl-residences", padding: 0.3 });
    L.control.scale({ imperial: false, position: "bottomleft" }).addTo(map);
    map.attributionControl.setPrefix(
      '<a href="https://leafletjs.com" title="A JavaScript library for interactive maps">Leaflet</a>');
  };

  P.onType = function (listener) {
    P.listeners.push(listener);
    if (P.typeIndex !== null) listener(P.typeIndex);
  };

  P.setType = function (index) {
    P.typeIndex = index;
    P.listeners.forEach(function (listener) { listener(index); });
  };

  function typeLabel(index) {
    var t = P.config.types[index];
    return t.label + " (" + num(t.threshold) + " m)";
  }

  // ------------------------------------------------------------------ communities

  function communityPopup(p) {
    var cfg = P.config, s = cfg.strings, html = [];
    html.push('<div class="pl-title">' + esc(p.name) + ' <span class="pl-muted">' + esc(p.id) + "</span></div>");
    html.push("<div>" + s.population + ": " + num(p.population) + " · " + s.score + ": <b>" +
      pct(p.score) + "</b></div>");
    html.push('<table class="pl-table"><thead><tr><th>' + s.type + "</th><th>" + s.threshold +
      "</th><th>" + s.coverage + "</th></tr></thead><tbody>");
    cfg.scenes.forEach(function (scene, sceneIndex) {
      html.push('<tr class="pl-scene"><th colspan="2">' + badge(scene) + " " + esc(scene.label) +
        "</th><th>" + pct(p.scenes[sceneIndex]) + "</th></tr>");
      cfg.types.forEach(function (t, typeIndex) {
        if (t.scene !== sceneIndex) return;
        var value = p.cov[typeIndex], missing = value === 0;
        html.push("<tr" + (missing ? ' class="pl-missing"' : "") + "><td>" + esc(t.label) +
          "</td><td>" + num(t.threshold) + " m</td><td>" + (missing ? s.missing : pct(value)) +
          "</td></tr>");
      });
    });
    html.push("</tbody></table>");
    return html.join("");
  }

  P.communities = function (data) {
    var layer = L.geoJSON(features(data), {
      pane: "pl-communities",
      style: function (f) {
        return { color: "#333", weight: 1.5, fillColor: f.properties.fill, fillOpacity: 0.3 };
      },
      onEachFeature: function (f, l) {
        l.bindPopup(function () { return communityPopup(f.properties); },
          { maxWidth: 480, minWidth: 300, maxHeight: 380, className: "pl-popup" });
        l.bindTooltip(esc(f.properties.name) + " · " + pct(f.properties.score), { sticky: true });
      }
    });
    P.layers.communities = layer;
    return layer;
  };

  // ------------------------------------------------------------------ facilities

  function facilityPopup(data, i, scene) {
    var cfg = P.config, s = cfg.strings;
    var types = data.t[i].map(function (t, k) {
      return esc(cfg.types[t].label) + ' <span class="pl-muted">(' + esc(s.match[data.m[i][k]] || data.m[i][k]) + ")</span>";
    });
    return '<div class="pl-title">' + (data.n[i] ? esc(data.n[i]) : '<span class="pl-muted">' + s.unnamed + "</span>") +
      "</div><table class=\"pl-table pl-kv\"><tr><th>" + s.type + "</th><td>" + types.join("<br>") +
      "</td></tr><tr><th>" + s.scene + "</th><td>" + badge(scene) + " " + esc(scene.label) +
      "</td></tr><tr><th>" + s.matched + "</th><td>" + data.m[i].map(function (m) {
        return esc(s.match[m] || m);
      }).filter(function (v, k, all) { return all.indexOf(v) === k; }).join(", ") +
      "</td></tr><tr><th>id</th><td>" + esc(data.id[i]) + "</td></tr></table>";
  }

  P.facilities = function (data, options) {
    var scene = P.config.scenes[options.scene];
    var group = L.markerClusterGroup({
      maxClusterRadius: 60, disableClusteringAtZoom: 18, showCoverageOnHover: false,
      spiderfyOnMaxZoom: true, chunkedLoading: true,
      iconCreateFunction: function (cluster) {
        return L.divIcon({
          html: '<div style="background:' + scene.colour + '">' + cluster.getChildCount() + "</div>",
          className: "pl-cluster", iconSize: [28, 28]
        });
      }
    });
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

  P.serviceAreas = function (data) {
    var byType = {};
    features(data).forEach(function (f) { byType[f.properties.t] = f; });
    var layer = L.geoJSON(null, {
      pane: "pl-areas", interactive: false,
      style: function (f) {
        var colour = P.config.scenes[P.config.types[f.properties.t].scene].colour;
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
          renderer: P.canvas, radius: Math.min(3 + 2 * Math.sqrt(data.p[r] / 100), 10),
          color: "#49006a", weight: 1, fillColor: "#dd3497", fillOpacity: 0.85
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
      return (parseInt(p.m.substr(2 * (i >> 3), 2), 16) >> (7 - (i & 7))) & 1;
    }).map(function (t) { return esc(t.label); });
    return '<div class="pl-title">' + s.cell + ' <span class="pl-muted">' + esc(p.id) + "</span></div>" +
      "<div>" + s.population + ": " + num(p.population) + " · " + s.residences + ": " + p.residences +
      "</div><div>" + s.meanMissing + ": " + p.mean + "</div><div><b>" + s.missingTypes + " (" + p.n +
      ")</b>: " + (missing.length ? missing.join(", ") : "–") + "</div>";
  }

  P.missingCells = function (data) {
    var layer = L.geoJSON(features(data), {
      pane: "pl-cells",
      style: function (f) {
        return { color: "#444", weight: 0.5, fillColor: f.properties.fill, fillOpacity: 0.65 };
      },
      onEachFeature: function (f, l) {
        l.bindPopup(function () { return cellPopup(f.properties); }, { maxWidth: 360, className: "pl-popup" });
      }
    });
    P.layers.missingCells = layer;
    return layer;
  };

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
          option.textContent = typeLabel(index) + " — " +
            s.uncovered.replace("{n}", num(options.uncovered[index]));
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
          return '<div><i style="background:' + c[1] + '"></i>' + esc(c[0]) + "</div>";
        }).join("");
        div.innerHTML = '<div class="pl-title">' + esc(cfg.title) + "</div>" +
          "<div><b>" + s.communityScore + "</b></div>" +
          '<div class="pl-ramp" style="background:linear-gradient(to right,' + stops + ')"></div>' +
          '<div class="pl-ramp-labels"><span>0%</span><span>50%</span><span>100%</span></div>' +
          '<div class="pl-area-row"><i class="pl-area-swatch"></i><span>' + s.serviceArea +
          ': <span class="pl-current-type"></span></span></div>' +
          '<div><i class="pl-dot"></i>' + s.gapResidences + "</div>" +
          "<div><b>" + s.cellsTitle + "</b></div>" + cells +
          '<div class="pl-muted">' + esc(options.note) + "</div>";
        L.DomEvent.disableClickPropagation(div);
        L.DomEvent.disableScrollPropagation(div);
        return div;
      }
    });
    var control = new Legend().addTo(P.map);
    P.onType(function (index) {
      var container = control.getContainer();
      container.querySelector(".pl-current-type").textContent = typeLabel(index);
      var colour = cfg.scenes[cfg.types[index].scene].colour;
      container.querySelector(".pl-area-swatch").style.background = colour;
    });
  };

  window.planner = P;
})();
