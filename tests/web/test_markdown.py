"""Model output is untrusted: hostile Markdown rendered by /static/js/markdown.js in a real page.

The page's Content-Security-Policy is bypassed here, so these tests see the sanitiser alone:
if it let an event handler through, the handler would really run and set `window.__pwned`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tests.real_server import RealServer
from tests.web.conftest import open_app, watched

HOSTILE = [
    '<img src=x onerror="window.__pwned = 1">',
    "[click](javascript:window.__pwned=1)",
    "[click](JaVaScRiPt:window.__pwned=1)",
    "[click](&#106;avascript:window.__pwned=1)",
    "<script>window.__pwned = 1</script>",
    '<a href="data:text/html,<script>window.__pwned=1</script>">data link</a>',
    "[data link](data:text/html;base64,PHNjcmlwdD53aW5kb3cuX19wd25lZD0xPC9zY3JpcHQ+)",
    '<svg onload="window.__pwned = 1"><circle r="5"/></svg>',
    '<iframe src="javascript:window.__pwned=1"></iframe>',
    '<iframe srcdoc="<script>parent.__pwned=1</script>"></iframe>',
    "![x](javascript:window.__pwned=1)",
    '<a href="https://example.org" onclick="window.__pwned=1">ok</a>',
    '<details open ontoggle="window.__pwned=1">x</details>',
    "<style>body{display:none}</style>",
    '<form action="javascript:window.__pwned=1"><button>go</button></form>',
    "**bold** <b onmouseover=window.__pwned=1>hover</b>",
]

RENDER = """async (texts) => {
  const { renderMarkdown } = await import('/static/js/markdown.js');
  const out = [];
  for (const text of texts) {
    const host = document.createElement('div');
    host.append(renderMarkdown(text));
    host.className = 'probe';
    document.body.append(host);  // live in the page: a handler that survived would fire
    out.push(host.innerHTML);
  }
  return out;
}"""

INSPECT = """() => {
  const all = [...document.querySelectorAll('.probe *')];
  return {
    handlers: all.flatMap(el =>
      [...el.attributes].filter(a => /^on/i.test(a.name)).map(a => a.name)),
    badLinks: all.filter(el => /^\\s*(javascript|data|vbscript):/i.test(
      el.getAttribute('href') || el.getAttribute('src') || el.getAttribute('action') || ''
    )).map(el => el.outerHTML),
    tags: [...new Set(all.map(el => el.tagName.toLowerCase()))],
    links: [...document.querySelectorAll('.probe a[href]')].map(a => ({
      href: a.getAttribute('href'), target: a.target, rel: a.rel })),
  };
}"""


@pytest.fixture
def bare_page(browser: Browser, server: RealServer) -> Iterator[Page]:
    context = browser.new_context(bypass_csp=True)
    page = open_app(watched(context.new_page()), server)
    yield page
    context.close()


def render(page: Page, texts: list[str]) -> list[str]:
    page.evaluate("document.querySelectorAll('.probe').forEach(e => e.remove())")
    html: list[str] = page.evaluate(RENDER, texts)
    return html


def test_hostile_markdown_is_neutralised(bare_page: Page) -> None:
    page = bare_page
    html = render(page, HOSTILE)
    page.hover(".probe strong")  # mouse events too, in case a handler survived on them
    page.wait_for_timeout(300)  # give any surviving onerror/onload time to fire
    assert page.evaluate("window.__pwned") is None, html
    found: dict[str, Any] = page.evaluate(INSPECT)
    assert found["handlers"] == [], html
    assert found["badLinks"] == [], html
    for tag in ("script", "iframe", "svg", "img", "style", "form", "object", "embed", "details"):
        assert tag not in found["tags"], (tag, html)
    for link in found["links"]:
        assert link["href"].startswith(("https:", "http:", "mailto:")), link
        assert link["target"] == "_blank" and link["rel"] == "noopener noreferrer", link
    # Raw HTML is shown as the text the model wrote, not dropped silently.
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in html[4]


def test_ordinary_markdown_renders(bare_page: Page) -> None:
    [html] = render(
        bare_page,
        [
            "# Title\n\nSome **bold**, *italic* and `code`, a [link](https://example.org).\n\n"
            "```js\nconst x = 1 < 2;\n```\n\n- [x] done\n- [ ] to do\n\n"
            "| a | b |\n|---|---|\n| 1 | 2 |"
        ],
    )
    page = bare_page
    assert (
        "<h1>Title</h1>" in html and "<strong>bold</strong>" in html and "<em>italic</em>" in html
    )
    assert (
        '<a href="https://example.org" target="_blank" rel="noopener noreferrer">link</a>' in html
    )
    block = page.locator(".probe .code-block")
    assert block.locator(".code-lang").inner_text() == "js"
    assert block.locator("pre code").inner_text().strip() == "const x = 1 < 2;"
    assert block.get_by_role("button", name="Copy code").count() == 1
    boxes = page.locator(".probe input[type=checkbox]")
    assert boxes.count() == 2 and boxes.first.is_checked() and boxes.first.is_disabled()
    assert page.locator(".probe td").all_inner_texts() == ["1", "2"]
