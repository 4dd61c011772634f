// SPDX-License-Identifier: MIT
/*
 * pyprof's HTML report (collector/export_html.c writes the data, the
 * build inlines this file after d3-flame-graph and uPlot). Every name
 * from the trace enters the page as a text node, never as markup.
 * For tests: errors go to #pp-errors, the flame graph's stacks as the
 * chart holds them to #pp-flame-folded (hidden), and body gets
 * data-pp-ready="1" once everything is drawn.
 */
(function () {
	"use strict";
	var errors = [];

	function note_error(msg) {
		errors.push(String(msg));
		var box = document.getElementById("pp-errors");
		if (box) {
			box.hidden = false;
			box.textContent = "Script errors: " + errors.join("; ");
		}
		document.body.setAttribute("data-pp-errors", String(errors.length));
	}
	window.addEventListener("error", function (e) {
		note_error(e.message || e);
	});
	/* the page loads nothing (its CSP says so): an attempt is a bug */
	document.addEventListener("securitypolicyviolation", function (e) {
		note_error("blocked loading " + e.blockedURI + " (" + e.violatedDirective + ")");
	});

	function el(tag, attrs) {
		var e = document.createElement(tag), k, i, c;
		for (k in attrs || {})
			if (k === "text")
				e.textContent = attrs[k];
			else if (k === "cls")
				e.className = attrs[k];
			else
				e.setAttribute(k, attrs[k]);
		for (i = 2; i < arguments.length; i++) {
			c = arguments[i];
			if (c === null || c === undefined)
				continue;
			e.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
		}
		return e;
	}

	/* as collector/fmt.c: B, KiB, MiB, GiB */
	function bytes(v) {
		var a = Math.abs(v), u = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
		while (a >= 1024 && i < u.length - 1) {
			a /= 1024;
			i++;
		}
		return (v < 0 ? "-" : "") + (i ? a.toFixed(1) : Math.round(a)) + " " + u[i];
	}
	function signed(v) {
		return (v > 0 ? "+" : "") + bytes(v);
	}
	function num(v) {
		return Math.round(v).toLocaleString("en-US");
	}
	function secs(v) {
		return v < 1 ? (v * 1000).toFixed(1) + " ms" : v.toFixed(2) + " s";
	}
	function site_name(s) {
		return (s.file || "?") + ":" + s.line;
	}

	function section(id, title, intro) {
		var s = el("section", { id: id }, el("h2", { text: title }));
		if (intro)
			s.appendChild(el("p", { cls: "intro", text: intro }));
		return s;
	}

	/* rows: arrays of cells (text, or {text, cls}) */
	function table(cls, head, rows) {
		var t = el("table", { cls: cls }), tr = el("tr");
		head.forEach(function (h) {
			tr.appendChild(el("th", { text: h }));
		});
		t.appendChild(el("thead", null, tr));
		var tb = el("tbody");
		rows.forEach(function (r) {
			var row = el("tr");
			r.forEach(function (c) {
				if (c !== null && typeof c === "object")
					row.appendChild(el("td", { cls: c.cls || "", text: c.text }));
				else
					row.appendChild(el("td", { text: c }));
			});
			tb.appendChild(row);
		});
		t.appendChild(tb);
		return t;
	}

	function card(label, value, sub) {
		return el("div", { cls: "card" }, el("div", { cls: "label", text: label }),
			  el("div", { cls: "value", text: value }),
			  sub ? el("div", { cls: "sub", text: sub }) : null);
	}

	/* ---- flame graph ---- */

	/* folded rows ["a;b;c", v...] -> a tree; vals(row) gives the
	 * leaf's figures, added up the path */
	function tree(rows, vals, keys) {
		/* Maps: a frame may be called "__proto__" */
		var root = { name: "all", children: [], kids: new Map() };
		function add(n, v) {
			keys.forEach(function (k, i) {
				n[k] = (n[k] || 0) + v[i];
			});
		}
		rows.forEach(function (r) {
			var n = root, v = vals(r);
			add(n, v);
			r[0].split(";").forEach(function (f) {
				var c = n.kids.get(f);
				if (!c) {
					c = { name: f, children: [], kids: new Map() };
					n.kids.set(f, c);
					n.children.push(c);
				}
				add(c, v);
				n = c;
			});
			n.self = keys.map(function (k, i) {
				return ((n.self || [])[i] || 0) + v[i];
			});
		});
		(function strip(n) {
			delete n.kids;
			n.children.forEach(strip);
		})(root);
		return root;
	}

	/* the chart's own hierarchy, folded again: what the graph draws */
	function folded_of(root, line) {
		var out = [];
		(function walk(n, path) {
			var p = n.depth ? path.concat([n.data.name]) : path;
			if (n.data.self)
				out.push(line(p.join(";"), n));
			(n.children || []).forEach(function (c) {
				walk(c, p);
			});
		})(root, []);
		return out.sort().join("\n");
	}

	function flame_section(title, intro, data, opts) {
		var s = section("pp-flame-section", title, intro);
		var box = el("div", { id: "pp-flame", cls: "flame" });
		var details = el("div", { id: "pp-flame-details", cls: "details" });
		var search = el("input", { type: "search", placeholder: "highlight frames containing...", id: "pp-search" });
		var reset = el("button", { type: "button", text: "Reset zoom" });
		s.appendChild(el("div", { cls: "controls" }, search, reset,
				 el("span", { cls: "hint", text: "Click a frame to zoom; hover for figures." })));
		s.appendChild(box);
		s.appendChild(details);
		var folded = el("pre", { id: "pp-flame-folded", hidden: "" });
		s.appendChild(folded);
		document.getElementById("pp-app").appendChild(s);
		if (!data.children.length) {
			box.appendChild(el("p", { cls: "empty", text: opts.empty }));
			return;
		}
		var chart = flamegraph.default()
			.width(Math.max(box.clientWidth, 600))
			.cellHeight(18)
			.transitionDuration(200)
			.minFrameSize(2)
			.sort(true)
			.title("")
			.setDetailsElement(details)
			.setLabelHandler(opts.label)
			.setSearchMatch(function (d, term) {
				return !!term && d.data.name.toLowerCase().indexOf(term.toLowerCase()) >= 0;
			});
		if (opts.color)
			chart.setColorMapper(opts.color);
		d3.select(box).datum(data).call(chart);
		search.addEventListener("input", function () {
			chart.search(search.value);
		});
		reset.addEventListener("click", function () {
			chart.resetZoom();
		});
		folded.textContent = folded_of(d3.select(box).datum(), opts.line);
	}

	/* ---- timeline ---- */

	function timeline(rep) {
		var h = rep.heap, pts = h.timeline || [];
		var s = section("pp-timeline-section", "Heap and RSS over time",
			"Live heap bytes (what pyprof tracked) and the process's resident set size, " +
			"sampled at every tick" + (rep.window ? ", over the window." : "."));
		var box = el("div", { id: "pp-timeline", cls: "timeline" });
		s.appendChild(box);
		document.getElementById("pp-app").appendChild(s);
		if (pts.length < 2) {
			box.appendChild(el("p", { cls: "empty", text: "Too few ticks in this trace to draw a timeline." }));
			return;
		}
		var kernel = h.kernel && h.kernel.source === "ebpf";
		var data = [pts.map(function (p) { return p.t; }),
			    pts.map(function (p) { return p.live_bytes; }),
			    pts.map(function (p) { return p.rss_bytes; })];
		var series = [{ label: "time (s)", value: function (u, v) { return v == null ? "-" : v.toFixed(2) + " s"; } },
			      { label: "heap live", stroke: "#c0392b", width: 2, fill: "rgba(192,57,43,0.08)",
				value: function (u, v) { return v == null ? "-" : bytes(v); } },
			      { label: "RSS", stroke: "#2471a3", width: 2,
				value: function (u, v) { return v == null ? "-" : bytes(v); } }];
		if (kernel) {
			data.push(pts.map(function (p) { return p.kernel_bytes; }));
			series.push({ label: "mapped (kernel)", stroke: "#7d3c98", width: 1, dash: [4, 4],
				      value: function (u, v) { return v == null ? "-" : bytes(v); } });
		}
		var opts = {
			width: Math.max(box.clientWidth, 600),
			height: 280,
			scales: { x: { time: false } },
			series: series,
			axes: [{ label: "seconds since the start" },
			       { size: 80, values: function (u, vals) { return vals.map(bytes); } }],
		};
		new uPlot(opts, data, box);
	}

	/* ---- report ---- */

	function header(title, lines) {
		var app = document.getElementById("pp-app");
		app.appendChild(el("h1", { text: title }));
		lines.forEach(function (l) {
			app.appendChild(el("p", { cls: "meta", text: l }));
		});
	}

	function leak_rows(list, growth) {
		return list.map(function (s) {
			return [{ text: site_name(s), cls: "site" }, { text: s.function, cls: "fn" },
				{ text: bytes(s.live_bytes), cls: "num" },
				{ text: growth ? bytes(s.growth_bytes_per_s) + "/s" : bytes(s.alloc_bytes), cls: "num" },
				{ text: num(s.live_count), cls: "num" },
				growth ? { text: (100 * s.retention).toFixed(1) + "%", cls: "num" }
				       : { text: s.leak ? "LEAK" : "", cls: "flag" }];
		});
	}

	function stalls(rep) {
		var app = document.getElementById("pp-app");
		var gc = rep.gc || {}, gil = rep.gil || {};
		var s = section("pp-gc", "Garbage collector",
			"Collections per generation and their pauses (source: " + (gc.source || "none") + ").");
		var gens = gc.generations || [];
		s.appendChild(gens.length ? table("gc", ["Generation", "Collections", "Pause total", "p50", "p99", "Max", "Collected", "Uncollectable"],
			gens.map(function (g) {
				return [g.generation, { text: num(g.collections), cls: "num" },
					{ text: g.pause_total_ms.toFixed(3) + " ms", cls: "num" },
					{ text: g.pause_p50_ms.toFixed(3) + " ms", cls: "num" },
					{ text: g.pause_p99_ms.toFixed(3) + " ms", cls: "num" },
					{ text: g.pause_max_ms.toFixed(3) + " ms", cls: "num" },
					{ text: num(g.collected), cls: "num" }, { text: num(g.uncollectable), cls: "num" }];
			})) : el("p", { cls: "empty", text: "No collections recorded." }));
		app.appendChild(s);

		s = section("pp-gil", "GIL",
			"Time each thread held the GIL and waited for it (source: " + (gil.source || "none") +
			(gil.wait_fraction !== undefined ? "; waiting: " + (100 * gil.wait_fraction).toFixed(1) + "% of thread time" : "") + ").");
		var thr = gil.threads || [];
		s.appendChild(thr.length ? table("gil", ["Thread", "TID", "Held", "Waited", "Wait fraction", "Acquisitions", "Lifetime"],
			thr.map(function (t) {
				return [{ text: t.name || "", cls: "fn" }, t.tid, { text: secs(t.held_s), cls: "num" },
					{ text: secs(t.wait_s), cls: "num" },
					{ text: (100 * t.wait_fraction).toFixed(1) + "%", cls: "num" },
					{ text: num(t.acquisitions), cls: "num" }, { text: secs(t.lifetime_s), cls: "num" }];
			})) : el("p", { cls: "empty", text: "No GIL activity recorded." }));
		app.appendChild(s);

		s = section("pp-locks", "Locks and waits",
			"Contended locks and other blocking waits, by the Python line that waited.");
		var rows = (rep.locks || []).map(function (l) { return ["lock", l]; })
			.concat((rep.waits || []).map(function (l) { return ["wait", l]; }));
		s.appendChild(rows.length ? table("locks", ["", "Kind", "Site", "Function", "Waited", "Longest", "Contentions"],
			rows.map(function (r) {
				var l = r[1], st = l.site || {};
				return [r[0], l.kind, { text: st.file ? site_name(st) : "(native)", cls: "site" },
					{ text: st.function || "", cls: "fn" },
					{ text: secs(l.wait_s), cls: "num" }, { text: secs(l.max_wait_s), cls: "num" },
					{ text: num(l.contentions), cls: "num" }];
			})) : el("p", { cls: "empty", text: "No contended locks or waits recorded." }));
		app.appendChild(s);
	}

	function show_report(d) {
		var rep = d.report, h = rep.heap, t = rep.target || {}, w = rep.window;
		var lines = [(t.argv || []).join(" ") || "(no command line)",
			     "pid " + t.pid + ", Python " + (t.python || "?") + ", " + rep.duration_s.toFixed(1) + " s" +
			     (rep.sample_bytes ? ", sampling every " + rep.sample_bytes + " bytes" : "") +
			     (t.exit_status !== undefined ? ", exit status " + t.exit_status : "")];
		if (w)
			lines.push("Window " + w.from_s.toFixed(1) + "-" + w.to_s.toFixed(1) + " s: live = " +
				   "allocated in the window and still live at " + w.live_at_s.toFixed(1) +
				   " s; allocated = in the window.");
		if (rep.attach)
			lines.push("Attached (" + rep.attach.mode + "): seen: " + rep.attach.sees + ". Not seen: " + rep.attach.cannot_see + ".");
		header("pyprof report", lines);
		document.title = "pyprof report: " + lines[0];
		var app = document.getElementById("pp-app");
		app.appendChild(el("div", { cls: "cards" },
			card(w ? "Live at window end" : "Live at end of run", bytes(h.live_bytes), num(h.live_count) + " blocks"),
			card(w ? "Peak in window" : "Peak heap", bytes(h.peak_bytes)),
			card("RSS peak", bytes(h.rss_peak_bytes)),
			card("Allocated", bytes(h.alloc_bytes), num(h.alloc_count) + " allocations, " + num(h.free_count) + " frees"),
			card("Leak suspects", String(rep.leaks.length)),
			card("Events", num(rep.events.total), rep.events.dropped ? num(rep.events.dropped) + " dropped" : "none dropped")));
		timeline(rep);

		flame_section("Live memory by stack",
			"Bytes " + (w ? "allocated in the window and still live at its end" : "still live at the end of the run") +
			", by the Python stack that allocated them (outermost frame at the bottom; the same stacks and figures as --format collapsed).",
			tree(d.flame.stacks, function (r) { return [r[1]]; }, ["value"]), {
				empty: "No live bytes with a stack.",
				label: function (n) {
					return n.data.name + ": " + bytes(n.value) + " live (" + (100 * n.value / (n.parent ? rootv(n) : n.value)).toFixed(1) + "% of all)";
				},
				line: function (path, n) { return path + " " + n.data.self[0]; },
			});

		var s = section("pp-leaks", "Leak suspects (" + rep.leaks.length + ")",
			"Sites whose live bytes grew steadily through the run" + (w ? " and in the window" : "") +
			": the same verdicts as the JSON report.");
		s.appendChild(rep.leaks.length ? table("leaks", ["Site", "Function", "Live", "Growth", "Blocks", "Retained"],
			leak_rows(rep.leaks, true)) : el("p", { cls: "empty", text: "No leak suspects." }));
		app.appendChild(s);

		s = section("pp-sites", "Top sites by live bytes",
			"The " + Math.min(rep.sites.length, 50) + " sites with the most " +
			(w ? "bytes allocated in the window and live at its end" : "live bytes") +
			", of " + (d.sites_total === undefined ? rep.sites.length : d.sites_total) + ".");
		s.appendChild(table("sites", ["Site", "Function", "Live", "Allocated", "Blocks", ""],
			leak_rows(rep.sites.slice(0, 50), false)));
		app.appendChild(s);
		stalls(rep);
	}

	function rootv(n) {
		while (n.parent)
			n = n.parent;
		return n.value || 1;
	}

	/* ---- diff ---- */

	function show_diff(d) {
		/* d.diff: diff --format json, {diff: {a, b, deltas}, sites, stacks} */
		var df = d.diff.diff, a = df.a, b = df.b, app = document.getElementById("pp-app");
		var by = d.flame.value === "alloc_bytes" ? "allocated" : "live";
		function side(tag, x) {
			return tag + ": " + x.name + " (" + x.from_s.toFixed(1) + "-" + x.to_s.toFixed(1) + " s): " +
				bytes(x.live_bytes) + " live at " + x.live_at_s.toFixed(1) + " s, " + bytes(x.alloc_bytes) + " allocated";
		}
		header("pyprof diff", [side("A", a), side("B", b)]);
		document.title = "pyprof diff: " + a.name + " vs " + b.name;
		app.appendChild(el("div", { cls: "cards" },
			card("A live", bytes(a.live_bytes), num(a.live_count) + " blocks"),
			card("B live", bytes(b.live_bytes), num(b.live_count) + " blocks"),
			card("B - A live", signed(df.delta_live_bytes)),
			card("B - A allocated", signed(df.delta_alloc_bytes))));

		var root = tree(d.flame.stacks, function (r) { return [r[1], r[2], Math.max(r[1], r[2])]; },
				["a", "b", "value"]);
		flame_section("Change in " + by + " bytes by stack",
			"Each frame is as wide as the larger of its " + by + " bytes in A and in B; red frames grew from A to B, " +
			"blue ones shrank, the deeper the colour the larger the change against the frame's size.", root, {
				empty: "Neither side has " + by + " bytes with a stack.",
				label: function (n) {
					return n.data.name + ": " + bytes(n.data.a) + " -> " + bytes(n.data.b) + " (" + signed(n.data.b - n.data.a) + ")";
				},
				color: function (n) {
					var dl = n.data.b - n.data.a, v = Math.max(n.data.a, n.data.b) || 1;
					var k = Math.min(1, Math.abs(dl) / v), c = Math.round(235 - 175 * k);
					if (Math.abs(dl) < 0.5)
						return "rgb(220,220,220)";
					return dl > 0 ? "rgb(255," + c + "," + c + ")" : "rgb(" + c + "," + c + ",255)";
				},
				line: function (path, n) { return path + " " + n.data.self[0] + " " + n.data.self[1]; },
			});

		var sites = d.diff.sites || [], key = by === "live" ? "delta_live_bytes" : "delta_alloc_bytes";
		var fig = by === "live" ? "live_bytes" : "alloc_bytes";
		function rows(list) {
			return list.map(function (s) {
				return [{ text: site_name(s), cls: "site" }, { text: s.function, cls: "fn" },
					{ text: signed(s[key]), cls: "num " + (s[key] > 0 ? "grew" : "shrank") },
					{ text: bytes(s.a[fig]), cls: "num" }, { text: bytes(s.b[fig]), cls: "num" }];
			});
		}
		var grew = sites.filter(function (s) { return s[key] >= 0.5; });
		var shrank = sites.filter(function (s) { return s[key] <= -0.5; }).reverse();
		var s = section("pp-grew", "Grew most (" + grew.length + " sites)", null);
		s.appendChild(grew.length ? table("diff", ["Site", "Function", "B - A", "A", "B"], rows(grew.slice(0, 50)))
			      : el("p", { cls: "empty", text: "No site grew." }));
		app.appendChild(s);
		s = section("pp-shrank", "Shrank most (" + shrank.length + " sites)", null);
		s.appendChild(shrank.length ? table("diff", ["Site", "Function", "B - A", "A", "B"], rows(shrank.slice(0, 50)))
			      : el("p", { cls: "empty", text: "No site shrank." }));
		app.appendChild(s);
	}

	function main() {
		var app = document.getElementById("pp-app");
		app.textContent = "";
		app.appendChild(el("div", { id: "pp-errors", cls: "errors", hidden: "" }));
		var d = JSON.parse(document.getElementById("pp-data").textContent);
		if (d.kind === "diff")
			show_diff(d);
		else
			show_report(d);
		var v = document.querySelector('meta[name="generator"]');
		app.appendChild(el("footer", { text: (v ? v.content : "pyprof") +
			". Drawn with d3-flame-graph, d3 and uPlot, inlined (their licences are in this file's source); this page loads nothing." }));
	}

	try {
		main();
	} catch (e) {
		note_error(e && e.stack ? e.stack : e);
	}
	/* transitions end on timers: ready once they had their time */
	setTimeout(function () {
		document.body.setAttribute("data-pp-ready", "1");
	}, 600);
})();
