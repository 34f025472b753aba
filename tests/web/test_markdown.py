"""The agent's markdown in headless Chromium: rendered (code blocks, inline code, lists,
links, emphasis, headings) through the page's own transcript code, and inert when it
carries HTML or script."""

from __future__ import annotations

from typing import Any

from tests.web.conftest import BrowserPage

EVIL_IMG = '<img src=x onerror="window.__pwned=1">'
EVIL_SCRIPT = "<script>window.__pwned=2</script>"

AGENT_MARKDOWN = f"""# Plan

Run `ls -la` first, then **check** the *output* and ~~skip~~ nothing.
{EVIL_IMG} and {EVIL_SCRIPT} stay text.

```python
print("<script>alert(1)</script>")
if a < b and c > d: pass
```

- one with [docs](https://example.test/docs?a=1&b=2)
- two with [bad](javascript:window.__pwned=3) and [data](data:text/html,hi)
  - nested `item`

1. first
2. second <https://example.test/auto>

> quoted _text_ and snake_case_name

---
Contact [us](mailto:team@example.test).
"""

# Streams the markdown token by token (as OpenCode does), then completes it; returns what
# the DOM shows. The page's own modules do the work: transcript.js and markdown.js.
_SCRIPT = """
async (source) => {
  const { TranscriptView } = await import("/static/transcript.js");
  const list = document.createElement("ol");
  document.body.append(list);
  const view = new TranscriptView(list);
  view.reset([]);
  view.apply({ type: "message", seq: 1, message: { id: "a1", role: "assistant",
               is_complete: false, created_at: "2026-01-01T00:00:01Z", parts: [] } });
  for (let i = 0; i < source.length; i += 7) {
    view.apply({ type: "token", seq: 2 + i, message_id: "a1", part_id: "p1",
                 token: source.slice(i, i + 7) });
  }
  const streamedCode = list.querySelectorAll("pre > code").length;
  view.apply({ type: "text_part_complete", seq: 999, message_id: "a1", part_id: "p1",
               text: source });
  view.apply({ type: "message_complete", seq: 1000, message_id: "a1" });
  const part = list.querySelector('[data-message-id="a1"] .part-text');
  const texts = (selector) => Array.from(part.querySelectorAll(selector), (n) => n.textContent);
  await new Promise((resolve) => setTimeout(resolve, 0)); // let any injected handler run
  return {
    streamedCode,
    dangerous: part.querySelectorAll("script, img, iframe, object, embed, style").length,
    withHandlers: Array.from(part.querySelectorAll("*")).filter(
      (n) => Array.from(n.attributes).some((a) => a.name.startsWith("on"))).length,
    pwned: window.__pwned ?? null,
    tags: Array.from(new Set(Array.from(part.querySelectorAll("*"), (n) => n.tagName))).sort(),
    h1: texts("h1"),
    code: Array.from(part.querySelectorAll("pre > code"), (n) => [n.className, n.textContent]),
    inlineCode: texts(":not(pre) > code"),
    strong: texts("strong"),
    em: texts("em"),
    del: texts("del"),
    ulItems: texts(":scope > ul > li"),
    nested: texts("ul ul > li"),
    olItems: texts("ol > li"),
    links: Array.from(part.querySelectorAll("a"), (a) => [a.textContent, a.getAttribute("href"),
                                                          a.rel, a.target]),
    quote: texts("blockquote"),
    rules: part.querySelectorAll("hr").length,
    paragraphs: texts(":scope > p"),
  };
}
"""


async def test_agent_markdown_renders_and_html_in_it_is_inert(web: BrowserPage) -> None:
    page = web.page
    await page.goto("/")
    r: dict[str, Any] = await page.evaluate(_SCRIPT, AGENT_MARKDOWN)
    assert r["pwned"] is None
    assert r["dangerous"] == 0 and r["withHandlers"] == 0
    assert set(r["tags"]) <= {
        "A",
        "BLOCKQUOTE",
        "BR",
        "CODE",
        "DEL",
        "EM",
        "H1",
        "HR",
        "LI",
        "OL",
        "P",
        "PRE",
        "STRONG",
        "UL",
    }
    assert r["streamedCode"] == 1  # rendered while streaming, not only at the end
    assert r["h1"] == ["Plan"]
    assert r["code"] == [
        ["language-python", 'print("<script>alert(1)</script>")\nif a < b and c > d: pass']
    ]
    assert r["inlineCode"] == ["ls -la", "item"]
    assert r["strong"] == ["check"] and r["em"] == ["output", "text"] and r["del"] == ["skip"]
    assert f"{EVIL_IMG} and {EVIL_SCRIPT} stay text." in r["paragraphs"][0]
    assert len(r["ulItems"]) == 2 and r["nested"] == ["nested item"]
    assert r["olItems"] == ["first", "second https://example.test/auto"]
    assert r["links"] == [
        ["docs", "https://example.test/docs?a=1&b=2", "noopener noreferrer nofollow", "_blank"],
        [
            "https://example.test/auto",
            "https://example.test/auto",
            "noopener noreferrer nofollow",
            "_blank",
        ],
        ["us", "mailto:team@example.test", "noopener noreferrer nofollow", "_blank"],
    ]
    # Links to other schemes keep their words and lose the link.
    assert r["ulItems"][1].startswith("two with bad and data")
    assert r["quote"] == ["quoted text and snake_case_name"]
    assert r["rules"] == 1
    assert web.errors == [], web.errors


async def test_user_text_is_not_markdown(web: BrowserPage) -> None:
    page = web.page
    await page.goto("/")
    shown = await page.evaluate(
        """async () => {
          const { TranscriptView } = await import("/static/transcript.js");
          const list = document.createElement("ol");
          document.body.append(list);
          new TranscriptView(list).reset([{ id: "u1", role: "user", content: "x",
            is_complete: true, created_at: "2026-01-01T00:00:00Z",
            parts: [{ type: "text", id: "u1p", text: "**not bold** `x`" }] }]);
          const part = list.querySelector(".part-text");
          return [part.textContent, part.children.length];
        }"""
    )
    assert shown == ["**not bold** `x`", 0]
