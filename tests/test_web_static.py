"""Fast checks of the web chat's files: WCAG AA contrast of the colour pairs the page uses, no
HTML injection sinks in the script, nothing loaded from another origin."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parent.parent / "web"


def luminance(hex_colour: str) -> float:
    rgb = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def variables() -> dict[str, str]:
    css = (WEB / "chat.css").read_text(encoding="utf-8")
    return dict(re.findall(r"--([\w-]+):\s*(#[0-9a-fA-F]{6})", css))


@pytest.mark.parametrize("fg,bg", [
    ("ink", "bg"), ("ink", "panel"), ("muted", "bg"), ("muted", "panel"), ("accent", "bg"),
    ("accent-ink", "accent"), ("accent-ink", "user"),
])
def test_text_colours_meet_wcag_aa(fg, bg):
    v = variables()
    assert contrast(v[fg], v[bg]) >= 4.5, (fg, bg, round(contrast(v[fg], v[bg]), 2))


def test_focus_outline_is_visible_against_the_background():
    v = variables()
    assert contrast(v["focus"], v["bg"]) >= 3.0  # WCAG 1.4.11 non-text contrast


def test_script_never_inserts_html():
    js = (WEB / "chat.js").read_text(encoding="utf-8") + (WEB / "embed.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in js, sink


def test_nothing_loads_from_another_origin():
    page = (WEB / "index.html").read_text(encoding="utf-8")
    assert not re.search(r'(src|href)="(https?:)?//', page)
