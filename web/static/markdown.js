// A small, safe markdown renderer for the agent's messages.
//
// Safety comes from how it builds output, not from filtering it: every piece of source text
// becomes a Text node (the DOM's own escaping), elements are created from a fixed list
// (p, h1-h6, pre, code, ul, ol, li, blockquote, hr, br, strong, em, del, a), no attribute is
// ever copied from the source, and a link's href is set only for http:, https: and mailto:
// URLs. No HTML string is ever parsed, so `<script>` or `<img onerror>` in the source stay text.
//
// Supported: fenced code blocks (``` or ~~~, an info word becomes class `language-x`),
// ATX headings, bullet and numbered lists (nested by indentation), block quotes, rules,
// paragraphs (a single newline is a line break), inline code, **strong**, *emphasis*,
// ~~strike~~, [links](url) and <https://autolinks>, backslash escapes.

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([^\s`]*)[^`]*$/;
const HEADING = /^ {0,3}(#{1,6})(?:\s+(.*?))?(?:\s+#+)?\s*$/;
const RULE = /^ {0,3}([-*_])(?:\s*\1){2,}\s*$/;
const QUOTE = /^ {0,3}> ?/;
const ITEM = /^( *)([-*+]|\d{1,9}[.)])(?:\s+(.*)|$)/;
const ESCAPABLE = /[\\`*_{}[\]()#+\-.!<>~|]/;
const SAFE_URL = /^(https?:\/\/|mailto:)/i;

function el(tag, className = "") {
  const node = document.createElement(tag);
  if (className) node.className = className;
  return node;
}

function isBlank(line) {
  return line.trim() === "";
}

/** True when `line` starts a block other than a paragraph (it ends a paragraph). */
function startsBlock(line) {
  return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line) ||
    ITEM.test(line);
}

/** `url` as an href when it is http(s) or mailto, else null. */
export function safeUrl(url) {
  const trimmed = url.trim();
  return SAFE_URL.test(trimmed) ? trimmed : null;
}

function link(label, url) {
  const href = safeUrl(url);
  if (href === null) return null;
  const a = el("a");
  a.href = href;
  a.rel = "noopener noreferrer nofollow";
  a.target = "_blank";
  inline(label, a, false);
  return a;
}

/** Index of the `]` closing the `[` at `start`, counting nested brackets; -1 if none. */
function closingBracket(text, start) {
  let depth = 0;
  for (let i = start; i < text.length; i++) {
    if (text[i] === "\\") i++;
    else if (text[i] === "[") depth++;
    else if (text[i] === "]" && --depth === 0) return i;
  }
  return -1;
}

/** `[label](url)` at `start`: {label, url, end} or null. */
function matchLink(text, start) {
  const close = closingBracket(text, start);
  if (close < 0 || text[close + 1] !== "(") return null;
  let depth = 0;
  for (let i = close + 1; i < text.length; i++) {
    if (text[i] === "(") depth++;
    else if (text[i] === ")" && --depth === 0) {
      const target = text.slice(close + 2, i).trim().split(/\s+/)[0] ?? "";
      return { label: text.slice(start + 1, close), url: target, end: i + 1 };
    }
  }
  return null;
}

/** The end of a `marker` run closing emphasis opened at `from`; -1 if none. */
function closingMarker(text, from, marker) {
  for (let j = text.indexOf(marker, from); j >= 0; j = text.indexOf(marker, j + 1)) {
    if (/\s/.test(text[j - 1]) || text[j - 1] === "\\") continue;
    const after = text[j + marker.length];
    if (marker.length === 1 && after === marker) { j++; continue; } // part of a longer run
    if (marker[0] === "_" && after !== undefined && /\w/.test(after)) continue;
    return j;
  }
  return -1;
}

/** Append the inline content of `text` to `parent`. */
function inline(text, parent, allowLinks = true) {
  let buffer = "";
  const flush = () => {
    if (buffer) parent.append(document.createTextNode(buffer));
    buffer = "";
  };
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === "\\" && ESCAPABLE.test(text[i + 1] ?? "")) {
      buffer += text[i + 1];
      i += 2;
      continue;
    }
    if (c === "`") {
      let n = 1;
      while (text[i + n] === "`") n++;
      const fence = "`".repeat(n);
      let close = text.indexOf(fence, i + n);
      while (close >= 0 && text[close + n] === "`") close = text.indexOf(fence, close + n + 1);
      if (close >= 0) {
        flush();
        const code = el("code");
        let body = text.slice(i + n, close);
        if (/^ .*[^ ].* $/.test(body)) body = body.slice(1, -1);
        code.textContent = body;
        parent.append(code);
        i = close + n;
      } else {
        buffer += fence;
        i += n;
      }
      continue;
    }
    if (allowLinks && c === "[") {
      const found = matchLink(text, i);
      if (found) {
        flush();
        const a = link(found.label, found.url);
        if (a) parent.append(a);
        else inline(found.label, parent, false); // an unsafe target: keep the words only
        i = found.end;
        continue;
      }
    }
    if (allowLinks && c === "<") {
      const auto = /^<((?:https?:\/\/|mailto:)[^\s<>]+)>/i.exec(text.slice(i));
      if (auto) {
        flush();
        parent.append(link(auto[1], auto[1]));
        i += auto[0].length;
        continue;
      }
    }
    if (c === "*" || c === "_" || (c === "~" && text[i + 1] === "~")) {
      const double = text[i + 1] === c;
      const marker = double ? c + c : c;
      const opensWord = c !== "_" || i === 0 || !/\w/.test(text[i - 1]);
      const next = text[i + marker.length];
      if (opensWord && next !== undefined && !/\s/.test(next)) {
        const close = closingMarker(text, i + marker.length, marker);
        if (close > i + marker.length) {
          flush();
          const tag = c === "~" ? "del" : double ? "strong" : "em";
          const node = el(tag);
          inline(text.slice(i + marker.length, close), node, allowLinks);
          parent.append(node);
          i = close + marker.length;
          continue;
        }
      }
      buffer += marker;
      i += marker.length;
      continue;
    }
    buffer += c;
    i++;
  }
  flush();
}

/** Lines joined with <br> line breaks, each line's inline markdown rendered. */
function paragraph(lines) {
  const p = el("p");
  lines.forEach((line, index) => {
    if (index > 0) p.append(el("br"));
    inline(index === lines.length - 1 ? line.trim() : line.trimStart(), p);
  });
  return p;
}

function indentOf(line) {
  return line.length - line.trimStart().length;
}

/** A list starting at `lines[start]`: {node, next}. Items end where a line is less indented
 * than the item's content (or is an item of this list); their content renders as blocks. */
function list(lines, start) {
  const first = ITEM.exec(lines[start]);
  const ordered = /\d/.test(first[2]);
  const node = el(ordered ? "ol" : "ul");
  if (ordered && parseInt(first[2], 10) !== 1) node.start = parseInt(first[2], 10);
  const base = first[1].length;
  let i = start;
  while (i < lines.length) {
    const m = ITEM.exec(lines[i]);
    if (!m || m[1].length !== base || /\d/.test(m[2]) !== ordered) break;
    const contentIndent = base + m[2].length + 1;
    const body = [m[3] ?? ""];
    i++;
    while (i < lines.length) {
      const line = lines[i];
      if (isBlank(line)) {
        const following = lines.slice(i + 1).find((l) => !isBlank(l));
        if (following === undefined || indentOf(following) < contentIndent) break;
        body.push("");
      } else if (indentOf(line) >= Math.min(contentIndent, base + 2)) {
        body.push(line.slice(Math.min(indentOf(line), contentIndent)));
      } else if (!startsBlock(line) && !isBlank(body[body.length - 1])) {
        body.push(line); // a lazy continuation of the item's paragraph
      } else {
        break;
      }
      i++;
    }
    const li = el("li");
    const blocks = render(body.join("\n"));
    // A one-paragraph item shows its text directly, not wrapped in <p>.
    if (blocks.childNodes.length === 1 && blocks.firstChild.tagName === "P") {
      li.append(...blocks.firstChild.childNodes);
    } else {
      li.append(blocks);
    }
    node.append(li);
    while (i < lines.length && isBlank(lines[i])) {
      const following = ITEM.exec(lines[i + 1] ?? "");
      if (!following || following[1].length !== base) break;
      i++;
    }
  }
  return { node, next: i };
}

/** Render markdown `source` into a DocumentFragment of safe elements. */
export function render(source) {
  const out = document.createDocumentFragment();
  const lines = String(source ?? "").replace(/\r\n?/g, "\n").split("\n");
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (isBlank(line)) {
      i++;
      continue;
    }
    const fence = FENCE.exec(line);
    if (fence) {
      const closing = new RegExp(`^ {0,3}${fence[1][0]}{${fence[1].length},}\\s*$`);
      const body = [];
      i++;
      while (i < lines.length && !closing.test(lines[i])) body.push(lines[i++]);
      i++; // the closing fence (an unclosed block runs to the end, as while streaming)
      const pre = el("pre");
      const code = el("code", fence[2] ? `language-${fence[2].replace(/[^\w+#.-]/g, "")}` : "");
      code.textContent = body.join("\n");
      pre.append(code);
      out.append(pre);
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      const h = el(`h${heading[1].length}`);
      inline(heading[2] ?? "", h);
      out.append(h);
      i++;
      continue;
    }
    if (RULE.test(line)) {
      out.append(el("hr"));
      i++;
      continue;
    }
    if (QUOTE.test(line)) {
      const body = [];
      while (i < lines.length && QUOTE.test(lines[i])) body.push(lines[i++].replace(QUOTE, ""));
      const quote = el("blockquote");
      quote.append(render(body.join("\n")));
      out.append(quote);
      continue;
    }
    if (ITEM.test(line)) {
      const { node, next } = list(lines, i);
      out.append(node);
      i = next;
      continue;
    }
    const body = [];
    while (i < lines.length && !isBlank(lines[i]) && (body.length === 0 || !startsBlock(lines[i]))) {
      body.push(lines[i++]);
    }
    out.append(paragraph(body));
  }
  return out;
}
