"""What a person sees on a page, read from the real browser's layout: used by the look test in
test_browser.py and, run as a script, to measure presenter mode over every page.

Everything here reads the DOM after Chromium has laid it out: each visible text node's computed font
size and colour against the background it sits on, and each plotly chart's SVG text elements'
boxes (getBoundingClientRect), against each other and against the chart's own box and clip paths.

    .venv/bin/python tests/look_helpers.py [--width 1500] [--clip english_story] [--pages overview,tokens]

starts the app, uploads a bundled clip and prints, page by page, the share of visible text at 20 px or
more and the page's height at a desk and in presenter mode.
"""

from __future__ import annotations

import re

# Every visible text node of the app: its text, computed font size, whether it sits in a chart's SVG,
# and (HTML text only) the WCAG contrast ratio of its colour against the first opaque background
# behind it (colours with alpha are composed over that background; the page itself is white).
TEXT_FACTS_JS = r"""
() => {
  const parse = (c) => {
    const m = c.match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const over = (top, bottom) => [0, 1, 2].map(i => top[i] * top[3] + bottom[i] * (1 - top[3])).concat([1]);
  const background = (el) => {
    const layers = [];
    for (let e = el; e && e.nodeType === 1; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    let bg = [255, 255, 255, 1];
    for (const c of layers.reverse()) bg = over(c, bg);
    return bg;
  };
  const lum = (c) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
  };
  const app = document.querySelector('[data-testid="stApp"]');
  const walker = document.createTreeWalker(app, NodeFilter.SHOW_TEXT);
  const facts = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent.trim();
    const el = node.parentElement;
    if (!text || !el || el.closest('script,style,noscript,canvas,[aria-hidden="true"]')) continue;
    if (!el.checkVisibility({opacityProperty: true, visibilityProperty: true})) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    const r = range.getBoundingClientRect();
    if (r.width < 1 || r.height < 1) continue;
    if (r.right <= 0 || r.bottom <= 0) continue;  // parked off screen (a skip link)
    const style = getComputedStyle(el);
    if (/Material/.test(style.fontFamily)) continue;  // an icon drawn by a font ligature, not words
    const colour = parse(style.color);
    if (colour && colour[3] === 0) continue;  // transparent until hovered
    const inSvg = !!el.closest('svg');
    let contrast = null;
    if (!inSvg) {
      const bg = background(el);
      const fg = over(parse(style.color) || [0, 0, 0, 1], bg);
      const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
      contrast = (a + 0.05) / (b + 0.05);
    }
    const where = el.closest('[data-testid="stSidebar"]') ? 'sidebar'
                : el.closest('.js-plotly-plot') ? 'chart'
                : el.closest('[data-testid="stMain"]') ? 'main' : 'other';
    facts.push({text: text.slice(0, 80), size: parseFloat(style.fontSize), weight: parseInt(style.fontWeight) || 400,
                contrast, where, tag: el.tagName.toLowerCase(),
                testid: (el.closest('[data-testid]') || el).getAttribute('data-testid') || ''});
  }
  return facts;
}
"""

# Every plotly chart's text: overlapping boxes (more than `tol` px both ways) and text cut by the chart's
# edge or by a clip path (partly inside, partly out), with the chart's title to say which chart it is.
CHART_FACTS_JS = r"""
(tol) => {
  const charts = [];
  const clipBox = (el) => {
    const holder = el.closest('[clip-path]');
    if (!holder) return null;
    const id = (holder.getAttribute('clip-path').match(/#([^)"']+)/) || [])[1];
    const rect = id && document.getElementById(id) && document.getElementById(id).querySelector('rect');
    const ctm = holder.getScreenCTM();
    if (!rect || !ctm) return null;
    const n = (a) => parseFloat(rect.getAttribute(a) || '0');
    const p = new DOMPoint(n('x'), n('y')).matrixTransform(ctm);
    const q = new DOMPoint(n('x') + n('width'), n('y') + n('height')).matrixTransform(ctm);
    return {left: Math.min(p.x, q.x), top: Math.min(p.y, q.y), right: Math.max(p.x, q.x), bottom: Math.max(p.y, q.y)};
  };
  const inside = (r, b) => r.left >= b.left - tol && r.right <= b.right + tol
                        && r.top >= b.top - tol && r.bottom <= b.bottom + tol;
  const meets = (r, b) => r.left < b.right && r.right > b.left && r.top < b.bottom && r.bottom > b.top;
  document.querySelectorAll('[data-testid="stMain"] .js-plotly-plot').forEach((plot) => {
    const box = plot.getBoundingClientRect();
    if (box.width < 1 || box.height < 1) return;
    const title = (plot.querySelector('.gtitle') || {}).textContent || '(untitled)';
    const texts = [];
    plot.querySelectorAll('svg text').forEach((t) => {
      const text = t.textContent.trim();
      if (!text || !t.checkVisibility({opacityProperty: true, visibilityProperty: true})) return;
      if (t.closest('.hoverlayer,.modebar,.updatemenu-container,.slider-container')) return;
      const r = t.getBoundingClientRect();
      if (r.width < 1 || r.height < 1) return;
      const b = t.getBBox(), m = t.getScreenCTM();  // the text's own box, turned as it is drawn
      const corners = [[b.x, b.y], [b.x + b.width, b.y], [b.x + b.width, b.y + b.height], [b.x, b.y + b.height]]
        .map(([x, y]) => new DOMPoint(x, y).matrixTransform(m));
      texts.push({text, r, corners, clip: clipBox(t)});
    });
    // two turned rectangles overlap when no edge of either separates them (separating axes), by more than tol
    const overlap = (p, q) => {
      for (const poly of [p, q]) for (let i = 0; i < 4; i++) {
        const a = poly[i], b = poly[(i + 1) % 4];
        const len = Math.hypot(b.x - a.x, b.y - a.y) || 1;
        const n = [-(b.y - a.y) / len, (b.x - a.x) / len];
        const proj = (pts) => pts.map(c => c.x * n[0] + c.y * n[1]);
        const [pp, qq] = [proj(p), proj(q)];
        const depth = Math.min(Math.max(...pp), Math.max(...qq)) - Math.max(Math.min(...pp), Math.min(...qq));
        if (depth <= tol) return false;
      }
      return true;
    };
    const overlaps = [], clipped = [];
    for (let i = 0; i < texts.length; i++) {
      const a = texts[i].r;
      if (!inside(a, box)) clipped.push(texts[i].text + ' (chart edge)');
      const c = texts[i].clip;
      if (c && meets(a, c) && !inside(a, c)) clipped.push(texts[i].text + ' (plot area)');
      for (let j = i + 1; j < texts.length; j++) {
        if (overlap(texts[i].corners, texts[j].corners)) overlaps.push([texts[i].text, texts[j].text]);
      }
    }
    charts.push({title: title.slice(0, 70), n_texts: texts.length, overlaps, clipped});
  });
  return charts;
}
"""

# Each st.dataframe's visible cells that do not fit their column. glide-data-grid draws on a canvas (cut
# text is clipped there, not replaced by an ellipsis) and keeps an accessible copy of the cells it draws in
# a table inside the canvas: the text comes from there, each text's width from the grid's own font, and
# the columns' edges from the canvas itself (the grid lines crossing the header's top padding).
DATAFRAME_FACTS_JS = r"""
() => {
  const ctx = document.createElement('canvas').getContext('2d');
  const out = [];
  document.querySelectorAll('[data-testid="stMain"] [data-testid="stDataFrame"]').forEach((frame, k) => {
    const canvas = frame.querySelector('canvas[data-testid="data-grid-canvas"]');
    if (!canvas || !canvas.width) return;
    const scale = canvas.width / canvas.getBoundingClientRect().width;
    const grid = getComputedStyle(canvas.closest('[style*="--gdg-base-font-style"]') || canvas);
    const pad = parseFloat(grid.getPropertyValue('--gdg-cell-horizontal-padding')) || 8;
    const css = (name) => grid.getPropertyValue(name);
    ctx.font = (css('--gdg-base-font-style') + ' ' + css('--gdg-font-family')).trim();
    const pixels = canvas.getContext('2d').getImageData(0, Math.round(2 * scale), canvas.width, 1).data;
    const edges = [0];
    const right = canvas.width / scale;
    const bg = [pixels[4 * 5], pixels[4 * 5 + 1], pixels[4 * 5 + 2]];
    for (let x = 1; x < canvas.width; x++) {
      const d = [0, 1, 2].reduce((sum, i) => sum + Math.abs(pixels[4 * x + i] - bg[i]), 0);
      if (d > 6 && x / scale - edges[edges.length - 1] > 12) edges.push(x / scale);
    }
    // the last column ends with the grid, unless the grid scrolls sideways: then the grid's edge cuts it
    // as any scrolled view does, and how wide it really is cannot be seen
    const scroller = frame.querySelector('.dvn-scroller');
    const scrolls = scroller && scroller.scrollWidth > scroller.clientWidth + 1;
    if (!scrolls && right - edges[edges.length - 1] > 12) edges.push(right);
    const cut = [];
    // a table whose rows can be selected draws a column of row markers first, which has an edge of its own
    // but no cell in the accessibility tree: the data columns' edges then start one further on
    const headers = canvas.querySelectorAll('[role="columnheader"]').length;
    const shift = edges.length - 1 === headers + 1 - (scrolls ? 1 : 0) ? 1 : 0;  // scrolled: the last is partial
    canvas.querySelectorAll('[role="gridcell"],[role="columnheader"]').forEach((cell) => {
      const text = (cell.textContent || '').trim();
      const col = parseInt(cell.getAttribute('aria-colindex')) - 1 + shift;
      if (!text || !(col + 1 < edges.length)) return;
      const room = edges[col + 1] - edges[col];
      const need = ctx.measureText(text).width + pad;  // the left padding; glide clips at the cell's edge
      if (need > room + 1) cut.push({text: text.slice(0, 60), need: Math.round(need), room: Math.round(room)});
    });
    out.push({index: k, columns: edges.length - 1, cut});
  });
  return out;
}
"""

BAD_TEXT = re.compile(r"\b(nan|NaN|None|undefined|null)\b|&(quot|amp|lt|gt|apos|nbsp|#\d+|#x[0-9a-fA-F]+);")
ALLOWED = re.compile(r"\bNone of\b|\bnull hypothesis\b")  # English, not a leaked value


def text_facts(page) -> list[dict]:
    return page.evaluate(TEXT_FACTS_JS)


def chart_facts(page, tol: float = 1.0) -> list[dict]:
    return page.evaluate(CHART_FACTS_JS, tol)


def dataframe_facts(page) -> list[dict]:
    return page.evaluate(DATAFRAME_FACTS_JS)


def bad_texts(facts: list[dict]) -> list[str]:
    """Visible text that shows a missing value or an HTML entity instead of what it stands for."""
    return sorted({f["text"] for f in facts if BAD_TEXT.search(ALLOWED.sub("", f["text"]))})


def low_contrast(facts: list[dict]) -> list[dict]:
    """HTML text under WCAG AA: 4.5:1, or 3:1 for large text (24 px, or 18.66 px bold)."""
    def need(f):
        return 3.0 if f["size"] >= 24 or (f["size"] >= 18.66 and f["weight"] >= 700) else 4.5
    return [f for f in facts if f["contrast"] is not None and f["contrast"] < need(f) - 0.01]


def share_at_least(facts: list[dict], px: float = 20.0) -> float:
    return sum(f["size"] >= px - 0.05 for f in facts) / max(1, len(facts))


def page_height(page) -> int:
    return page.get_by_test_id("stMain").evaluate("main => main.scrollHeight")


if __name__ == "__main__":  # the measuring script: see the module's docstring
    import argparse
    import collections
    import json
    import sys
    import time
    from pathlib import Path

    sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parents[1])]
    import test_browser as tb
    from page_titles import PAGE_TITLES
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser()
    parser.add_argument("--width", type=int, default=1500)
    parser.add_argument("--clip", default="english_story")
    parser.add_argument("--pages", default="")
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    stems = [p for p in args.pages.split(",") if p] or list(PAGE_TITLES)
    server_gen = tb.server.__wrapped__()
    url = next(server_gen)
    results = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=tb.CHROMIUM, args=tb.CHROMIUM_ARGS)
            for presenter in (False, True):
                context = browser.new_context(viewport={"width": args.width, "height": 1200})
                page = context.new_page()
                page.set_default_timeout(tb.SLOW)
                tb.open_page(page, url, "?presenter=1" if presenter else "")
                tb.choose_source(page, "Upload a file")
                tb.upload(page, tb.SAMPLES / f"{args.clip}.flac")
                for stem in stems:
                    path = "" if stem == "overview" else stem
                    t0 = time.monotonic()
                    tb.go_to(page, url, path)
                    page.wait_for_timeout(800)
                    facts = text_facts(page)
                    results[(stem, presenter)] = dict(
                        share=share_at_least(facts), n=len(facts), height=page_height(page),
                        small=collections.Counter((f["where"], f["testid"], f["size"]) for f in facts
                                                  if f["size"] < 19.95).most_common(6),
                        contrast=[(f["text"][:30], f["testid"], round(f["contrast"], 2))
                                  for f in low_contrast(facts)][:6],
                        bad=bad_texts(facts), seconds=round(time.monotonic() - t0, 1))
                    r = results[(stem, presenter)]
                    print(f"{stem:18} {'P' if presenter else 'D'} share>=20px {r['share']:.2f} n={r['n']:4} "
                          f"h={r['height']:6} t={r['seconds']}s bad={r['bad'][:3]}", flush=True)
                context.close()
            browser.close()
    finally:
        next(server_gen, None)
    total = {m: [results[(s, m)] for s in stems] for m in (False, True)}
    for m in (False, True):
        n = sum(r["n"] for r in total[m])
        print(("presenter" if m else "desk"), "share of all text nodes >= 20 px:",
              round(sum(r["share"] * r["n"] for r in total[m]) / max(1, n), 3))
    ratios = {s: results[(s, True)]["height"] / results[(s, False)]["height"] for s in stems}
    print("length ratio presenter/desk:", sorted(((round(r, 2), s) for s, r in ratios.items()), reverse=True))
    for s in stems:
        print(s, "small:", results[(s, True)]["small"], "contrast:", results[(s, True)]["contrast"])
    if args.json:
        Path(args.json).write_text(json.dumps({f"{s}|{int(m)}": r for (s, m), r in results.items()}, indent=1))
