"""Age-friendly checks (适老化通用设计规范, DESIGN §5a) computed in the page from what is rendered."""

from __future__ import annotations

from typing import Any

CHECK_JS = r"""
({minFont, minLineHeight, minContrast, minTarget, mainFont}) => {
  const problems = [];
  const parse = (c) => {
    const m = /rgba?\(([^)]+)\)/.exec(c || '');
    if (!m) return null;
    const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  const over = (top, bottom) => ({
    r: top.r * top.a + bottom.r * (1 - top.a), g: top.g * top.a + bottom.g * (1 - top.a),
    b: top.b * top.a + bottom.b * (1 - top.a), a: 1,
  });
  const lum = ({ r, g, b }) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
    }
    let bg = { r: 255, g: 255, b: 255, a: 1 };
    for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg);
    return bg;
  };
  const shown = (el) => {
    const s = getComputedStyle(el);
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none' && Number(s.opacity) > 0;
  };
  const name = (el) => `${el.tagName.toLowerCase()}${el.dataset.testid ? '[' + el.dataset.testid + ']' : ''}`
    + `${el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\s+/).join('.') : ''}`;
  let texts = 0, maxFont = 0;
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent.trim();
    const el = node.parentElement;
    if (!text || !el || !shown(el) || el.closest('[aria-hidden="true"], noscript, script, style')) continue;
    texts += 1;
    const s = getComputedStyle(el);
    const size = parseFloat(s.fontSize);
    maxFont = Math.max(maxFont, size);
    const line = s.lineHeight === 'normal' ? 1.2 * size : parseFloat(s.lineHeight);
    const fg = parse(s.color);
    const bg = background(el);
    const ratio = (Math.max(lum(over(fg, bg)), lum(bg)) + 0.05) / (Math.min(lum(over(fg, bg)), lum(bg)) + 0.05);
    const where = `${name(el)} "${text.slice(0, 24)}"`;
    if (size < minFont) problems.push(`${where}: font ${size}px < ${minFont}px`);
    if (line / size < minLineHeight - 0.001) problems.push(`${where}: line height ${(line / size).toFixed(2)} < ${minLineHeight}`);
    if (ratio < minContrast) problems.push(`${where}: contrast ${ratio.toFixed(2)} < ${minContrast}`);
  }
  let targets = 0;
  for (const el of document.querySelectorAll('button, a[href], input, select, textarea, [role="button"], [role="switch"]')) {
    if (!shown(el)) continue;
    targets += 1;
    const r = el.getBoundingClientRect();
    if (r.width < minTarget || r.height < minTarget) {
      problems.push(`${name(el)} "${(el.innerText || el.value || '').trim().slice(0, 24)}": target ${Math.round(r.width)}x${Math.round(r.height)} < ${minTarget}`);
    }
  }
  if (maxFont < mainFont) problems.push(`largest text ${maxFont}px < ${mainFont}px`);
  return { problems, texts, targets, maxFont };
}
"""

ELDER = {"minFont": 18, "minLineHeight": 1.3, "minContrast": 4.5, "minTarget": 60, "mainFont": 30}


def check_elder_mode(page: Any, screen: str) -> dict[str, Any]:
    """Fail with every problem found on the current screen, named by element and text."""
    report = page.evaluate(CHECK_JS, ELDER)
    assert report["texts"] > 0, f"{screen}: no text rendered"
    assert not report["problems"], f"{screen} is not age-friendly:\n  " + "\n  ".join(report["problems"])
    return report
