"""pyprof report --format html and pyprof diff --format html, opened in
headless Chromium (Debian's chromium, scripts/setup.sh).

One recording of tests/workloads/service.py (py3.11-debian), then:
- the page is one file that loads nothing: no tag that fetches (script
  src, link, img, iframe...), no src/href attribute, a CSP of
  default-src 'none', and no "://" in it but the XML namespace names
  d3 passes to createElementNS;
- in Chromium (--dump-dom after the transitions' virtual time): the page
  says it is drawn (data-pp-ready), with no script error, no blocked
  load and no console error; the leak table lists exactly the JSON
  report's leaks, the planted LEAK-CACHE line among them; the flame
  graph's stacks, as the chart holds them, are the lines of --format
  collapsed, value for value, and its frames are drawn (the leak's
  function among them); --screenshot writes a picture;
- --from/--to: the page shows the window and its stacks are the
  window's collapsed lines;
- pyprof diff A B --format html (two windows of the trace): the chart's
  two-column stacks are diff --format collapsed's, and the leak's frame
  is drawn red (it grew from the short window to the long one);
- hostile names (a file and a function named with markup, quotes, an
  address and a lone surrogate): no element is injected, the names show
  as text, the data stays valid, and still no address in the file;
- bad input: an unknown diff format is a usage error naming html.
"""
import html.parser
import json
import os
import re

import harness as h

W = "service.py"
LABEL = "py3.11-debian"
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1280,2000", "--virtual-time-budget=8000", "--enable-logging=stderr",
         "--v=0"]
NAMESPACES = re.compile(r"https?://www\.w3\.org/(2000/svg|1999/xhtml|1999/xlink|"
                        r"XML/1998/namespace|2000/xmlns/)")
FETCHING_TAGS = {"link", "img", "iframe", "object", "embed", "base", "audio", "video",
                 "source", "frame", "form", "input-image"}
_seq = 0


class Page(html.parser.HTMLParser):
    """Elements of a page: tags with their attributes, text by id."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags = []          # (tag, {attr: value})
        self.text = {}          # id -> text inside (pre, section)
        self.rows = {}          # section id -> [[cell text]]
        self._ids = []          # open (tag, id) for text capture
        self._section = None
        self._row = None
        self._cell = None

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
            "source", "track", "wbr"}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag in self.VOID:
            return
        if tag == "section":
            self._section = a.get("id")
        if a.get("id"):
            self._ids.append((tag, a["id"]))
            self.text.setdefault(a["id"], "")
        elif tag in ("pre", "section"):
            self._ids.append((tag, None))
        if tag == "tr" and self._section:
            self._row = []
            self.rows.setdefault(self._section, []).append(self._row)
        if tag == "td" and self._row is not None:
            self._cell = ""

    def handle_endtag(self, tag):
        if tag == "td" and self._row is not None and self._cell is not None:
            self._row.append(self._cell)
            self._cell = None
        if tag == "tr":
            self._row = None
        if tag == "section":
            self._section = None
        if self._ids and self._ids[-1][0] == tag:
            self._ids.pop()

    def handle_data(self, data):
        for tag, i in self._ids:
            if i:
                self.text[i] += data
        if self._cell is not None:
            self._cell += data


def parse(text):
    p = Page()
    p.feed(text)
    p.close()
    return p


def static_checks(name, path):
    """The file as written: one page that references nothing."""
    data = open(path, "rb").read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        h.check(False, "%s: valid UTF-8" % name, e)
        return None
    p = parse(text)
    fetch = [(t, a) for t, a in p.tags if t in FETCHING_TAGS or
             any(k in ("src", "href", "srcset", "action", "poster", "background") for k in a)]
    h.check(not fetch, "%s: no tag or attribute that fetches" % name, fetch[:3])
    csp = [a.get("content", "") for t, a in p.tags
           if t == "meta" and a.get("http-equiv", "").lower() == "content-security-policy"]
    h.check(len(csp) == 1 and "default-src 'none'" in csp[0],
            "%s: a Content-Security-Policy of default-src 'none'" % name, csp)
    rest = NAMESPACES.sub("", text)
    urls = re.findall(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]{0,60}", rest)
    h.check(not urls and "@import" not in rest and "url(" not in rest,
            "%s: no address in the file (XML namespace names aside)" % name, urls[:5])
    scripts = [a for t, a in p.tags if t == "script"]
    h.check(len(scripts) == 3 and scripts[0].get("type") == "application/json",
            "%s: the data block, then two inline scripts" % name, scripts)
    return text


def chromium(name, path, shot=None):
    """(dumped DOM text, stderr) or (None, why)."""
    global _seq
    _seq += 1
    args = [CHROMIUM] + FLAGS + ["--user-data-dir=%s" % h.tmpfile("chromium-%d" % _seq)]
    if shot:
        args.append("--screenshot=%s" % shot)
    else:
        args.append("--dump-dom")
    r = h.run(args + ["file://" + os.path.abspath(path)], timeout=120)
    if not h.check(r.rc == 0, "%s: chromium %s exits 0" % (name, "--screenshot" if shot else "--dump-dom"),
                   "rc %s: %s" % (r.rc, h.tail(r.err))):
        return None, r.err
    return r.out, r.err


def rendered(name, path):
    """Open the page; check it drew without errors; its parsed DOM."""
    dom, err = chromium(name, path)
    if dom is None:
        return None
    p = parse(dom)
    body = [a for t, a in p.tags if t == "body"]
    body = body[0] if body else {}
    h.check(body.get("data-pp-ready") == "1" and "data-pp-errors" not in body,
            "%s: the page is drawn with no script error and no blocked load" % name,
            "body %s; errors: %s" % (body, p.text.get("pp-errors", "")[:400]))
    console = [l for l in err.splitlines()
               if re.search(r"CONSOLE|Uncaught|SyntaxError|TypeError|ReferenceError", l)]
    h.check(not console, "%s: nothing on the console" % name, console[:3])
    return p


def folded(args):
    r = h.pyprof(*args)
    if not h.check(r.rc == 0, "%s: exits 0" % " ".join(args[:1] + args[2:]), h.tail(r.err)):
        return None
    return sorted(r.stdout.decode("utf-8").splitlines())


def frames(p):
    return [a for t, a in p.tags if t == "g" and a.get("class", "").startswith("frame")]


def check_report(rep, trace):
    out = h.tmpfile("report.html")
    r = h.pyprof("report", trace, "--format", "html", "-o", out)
    if not h.check(r.rc == 0 and os.path.getsize(out) > 0, "report --format html -o: exits 0",
                   h.tail(r.err)):
        return
    static_checks("report html", out)
    p = rendered("report html", out)
    if p is None:
        return
    # the leak table: the JSON report's verdicts, the planted leak there
    file, line, func = h.marker_site(W, "LEAK-CACHE")
    rows = p.rows.get("pp-leaks", [])
    shown = sorted(r[0] for r in rows if r)
    want = sorted("%s:%d" % (s["file"], s["line"]) for s in rep["leaks"])
    h.check(shown == want, "report html: the leak table lists the JSON report's leaks",
            "page %s vs JSON %s" % (shown[:5], want[:5]))
    h.check("%s:%d" % (file, line) in shown,
            "report html: the leak table shows the planted leak's file:line",
            "%s:%d not in %s" % (file, line, shown[:8]))
    # the flame graph holds the collapsed stacks, value for value
    want = folded(["report", trace, "--format", "collapsed"])
    have = sorted(l for l in p.text.get("pp-flame-folded", "").splitlines() if l)
    if want is not None:
        h.check(have == want and want,
                "report html: the flame graph's stacks are --format collapsed's (%d)" % len(want),
                "%d vs %d lines; first differing: %s" % (
                    len(have), len(want), [x for x in zip(have, want) if x[0] != x[1]][:2]))
    names = [a.get("name", "") for a in frames(p)]
    h.check(len(names) > 10 and "%s (%s:%d)" % (func, file, line) in names,
            "report html: frames drawn, the leak's among them (%d)" % len(names), names[:5])
    # GC and GIL summaries: a row per generation, per thread
    gens = len(rep["gc"].get("generations", []))
    h.check(len(p.rows.get("pp-gc", [])) == gens + 1 and
            len(p.rows.get("pp-gil", [])) == len(rep["gil"].get("threads", [])) + 1,
            "report html: the GC and GIL tables have the report's generations and threads",
            "gc rows %d (gens %d), gil rows %d" % (len(p.rows.get("pp-gc", [])), gens,
                                                  len(p.rows.get("pp-gil", []))))
    shot = h.tmpfile("report.png")
    dom, err = chromium("report html", out, shot=shot)
    h.check(dom is not None and os.path.exists(shot) and os.path.getsize(shot) > 20000,
            "report html: chromium --screenshot draws it",
            "%s" % (os.path.getsize(shot) if os.path.exists(shot) else "no file"))


def check_window(trace):
    out = h.tmpfile("window.html")
    r = h.pyprof("report", trace, "--format", "html", "--from", "0.5", "--to", "1.5", "-o", out)
    if not h.check(r.rc == 0, "report --format html --from --to: exits 0", h.tail(r.err)):
        return
    p = rendered("window html", out)
    if p is None:
        return
    want = folded(["report", trace, "--format", "collapsed", "--from", "0.5", "--to", "1.5"])
    have = sorted(l for l in p.text.get("pp-flame-folded", "").splitlines() if l)
    h.check(want is not None and have == want,
            "window html: the flame graph holds the window's collapsed stacks",
            "%d vs %s lines" % (len(have), want and len(want)))
    # where the edges fell (on ticks), as the JSON report says
    r = h.pyprof("report", trace, "--format", "json", "--from", "0.5", "--to", "1.5")
    w = json.loads(r.stdout)["window"] if r.rc == 0 else {}
    want = "Window %.1f-%.1f s" % (w.get("from_s", -1), w.get("to_s", -1))
    meta = p.text.get("pp-app", "")
    h.check(want in meta, "window html: the page names the window (%s)" % want, meta[:300])


def check_diff(trace):
    out = h.tmpfile("diff.html")
    a, b = trace + ":0-0.6", trace + ":0.6-"
    r = h.pyprof("diff", a, b, "--format", "html", "-o", out)
    if not h.check(r.rc == 0, "diff --format html: exits 0", h.tail(r.err)):
        return
    static_checks("diff html", out)
    p = rendered("diff html", out)
    if p is None:
        return
    want = folded(["diff", a, b, "--format", "collapsed"])
    have = sorted(l for l in p.text.get("pp-flame-folded", "").splitlines() if l)
    h.check(want is not None and have == want and want,
            "diff html: the flame graph's stacks are diff --format collapsed's (A and B)",
            "%d vs %s lines" % (len(have), want and len(want)))
    file, line, func = h.marker_site(W, "LEAK-CACHE")
    leak = "%s (%s:%d)" % (func, file, line)
    # frames drawn as <g name=...><rect fill=...>: the fill follows its g
    fills = []
    for i, (t, attrs) in enumerate(p.tags):
        if t == "g" and attrs.get("name") == leak:
            nxt = [x for x in p.tags[i + 1:i + 3] if x[0] == "rect"]
            if nxt:
                fills.append(nxt[0][1].get("fill", ""))
    red = [f for f in fills if re.match(r"rgb\(255,\s*(\d+),\s*\1\)", f)]
    h.check(red, "diff html: the leak's frame is drawn red (it grew from A to B)", fills)
    heads = " ".join(p.text.get("pp-app", "").split())
    h.check("A: " + a in heads and "B: " + b in heads,
            "diff html: both sides named with their totals", heads[:300])


HOSTILE_FILE = "</script><img src=x onerror=alert(1)>https://evil.example/\"'&amp;\udcff.py"
HOSTILE_FUNC = "</script><b id=inj>\"'&lt;"


def check_hostile(python):
    wl = h.tmpfile("hostile.py")
    with open(wl, "w") as f:
        f.write("src = 'def f():\\n    return [bytearray(4096) for _ in range(300)]\\n'\n"
                "ns = {}\n"
                "exec(compile(src, %r, 'exec'), ns)\n"
                "f = ns['f']\n"
                "f.__code__ = f.__code__.replace(co_name=%r, co_qualname=%r)\n"
                "KEEP = f()\n" % (HOSTILE_FILE, HOSTILE_FUNC, HOSTILE_FUNC))
    rec = h.record(python, wl)
    if not h.check(rec.report is not None, "hostile names: recorded", rec.why):
        return
    out = h.tmpfile("hostile.html")
    r = h.pyprof("report", rec.trace, "--format", "html", "-o", out)
    if not h.check(r.rc == 0, "hostile names: report --format html exits 0", h.tail(r.err)):
        return
    static_checks("hostile html", out)
    p = rendered("hostile html", out)
    if p is None:
        return
    injected = [(t, a) for t, a in p.tags if t in ("img", "b") or a.get("id") == "inj"]
    h.check(not injected, "hostile names: no element injected", injected[:3])
    names = [a.get("name", "") for a in frames(p)]
    # as collapsed writes frames: ';' becomes ','
    hit = [n for n in names if n.startswith(HOSTILE_FUNC.replace(";", ","))]
    h.check(hit and "</script><img src=x onerror=alert(1)>https://evil.example/" in hit[0]
            and "\ufffd" in hit[0],
            "hostile names: shown as text (a lone surrogate as U+FFFD)", hit[:1] or names[:5])
    want = folded(["report", rec.trace, "--format", "collapsed"])
    have = sorted(l for l in p.text.get("pp-flame-folded", "").splitlines() if l)
    h.check(want is not None and have == want,
            "hostile names: the flame graph's stacks are still --format collapsed's",
            "%d vs %s lines" % (len(have), want and len(want)))


def main():
    h.require_pyprof()
    if not h.check(os.access(CHROMIUM, os.X_OK), "test_html: chromium installed",
                   "%s missing (scripts/setup.sh installs Debian's chromium)" % CHROMIUM):
        h.done()
    python = h.interpreter_path(LABEL)
    if not h.check(os.access(python, os.X_OK), "test_html: %s present" % LABEL, python):
        h.done()
    rec = h.record(python, W, ("--seconds", "2"))
    if h.check(rec.report is not None, "%s: recorded %s" % (LABEL, W), rec.why):
        check_report(rec.report, rec.trace)
        check_window(rec.trace)
        check_diff(rec.trace)
    check_hostile(python)
    r = h.pyprof("diff", "a", "b", "--format", "svg")
    h.check(r.rc == 2 and "html" in r.err, "diff --format svg: a usage error naming html",
            "rc %s: %s" % (r.rc, h.tail(r.err)))
    h.done()


if __name__ == "__main__":
    main()
