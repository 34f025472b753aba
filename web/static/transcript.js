// The transcript: messages and their parts, folded from server events into the DOM.
//
// Every piece of text from the server (prompts, model output, tool arguments and results)
// is set with textContent / Text nodes, never parsed as HTML. The agent's text is markdown,
// rendered by markdown.js, which builds elements from a fixed list around Text nodes.

import { render as renderMarkdown } from "./markdown.js";

const ROLE_LABELS = { user: "You", assistant: "Agent" };
const TOOL_STATUS_LABELS = {
  pending: "pending",
  running: "running…",
  completed: "done",
  error: "failed",
};

/** Create an element with a class and optional text (as text, never HTML). */
function el(tag, className = "", text = null) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== null) node.textContent = text;
  return node;
}

function formatJson(value) {
  try {
    return JSON.stringify(value, null, 2);
  } catch {
    return String(value);
  }
}

function formatTime(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleTimeString();
}

/** One message in the list, with its parts by id. */
class MessageView {
  constructor(id, role, createdAt) {
    this.id = id;
    this.role = role;
    this.parts = new Map();
    this.complete = false;
    this.node = el("li", `message message-${role}`);
    this.node.dataset.messageId = id;
    const head = el("div", "message-head");
    head.append(el("span", "message-role", ROLE_LABELS[role] ?? role));
    if (createdAt) {
      const time = el("time", "message-time", formatTime(createdAt));
      time.dateTime = createdAt;
      head.append(time);
    }
    this.body = el("div", "message-body");
    this.node.append(head, this.body);
  }

  setComplete(complete, cancelled = false) {
    this.complete = complete;
    this.node.classList.toggle("streaming", !complete);
    if (cancelled && !this.node.querySelector(".message-cancelled")) {
      this.node.append(el("p", "message-cancelled", "Cancelled."));
    }
  }

  textPart(partId) {
    let part = this.parts.get(partId);
    if (!part || part.kind !== "text") {
      part = new TextPartView(partId, this.role === "assistant");
      this.parts.set(partId, part);
      this.body.append(part.node);
    }
    return part;
  }
}

/** A text part: the agent's as rendered markdown (re-rendered as tokens stream in), a
 * person's as plain text in a single Text node. */
class TextPartView {
  constructor(id, markdown) {
    this.kind = "text";
    this.id = id;
    this.markdown = markdown;
    this.source = "";
    this.node = el("div", markdown ? "part-text part-markdown" : "part-text");
    this.node.dataset.partId = id;
    this.text = document.createTextNode("");
    this.node.append(this.text);
  }

  append(token) {
    if (!this.markdown) {
      this.text.appendData(token);
      return;
    }
    this.source += token;
    this.node.replaceChildren(renderMarkdown(this.source));
  }

  set(text) {
    if (!this.markdown) {
      if (this.text.data !== text) this.text.data = text;
      return;
    }
    if (this.source === text && this.node.firstChild !== this.text) return;
    this.source = text;
    this.node.replaceChildren(renderMarkdown(text));
  }
}

/** A tool call, collapsed: the summary line shows its name and status. */
class ToolPartView {
  constructor(id, toolCallId, toolName) {
    this.kind = "tool";
    this.id = id;
    this.toolCallId = toolCallId;
    this.node = el("details", "part-tool");
    this.node.dataset.partId = id;
    this.node.dataset.toolCallId = toolCallId;
    const summary = el("summary", "tool-summary");
    this.nameNode = el("span", "tool-name", toolName);
    this.titleNode = el("span", "tool-title");
    this.statusNode = el("span", "tool-status");
    summary.append(this.nameNode, this.titleNode, this.statusNode);
    this.argsNode = el("pre", "tool-args");
    this.resultLabel = el("p", "tool-label", "Result");
    this.resultNode = el("pre", "tool-result");
    this.resultLabel.hidden = this.resultNode.hidden = true;
    this.node.append(summary, el("p", "tool-label", "Arguments"), this.argsNode,
      this.resultLabel, this.resultNode);
    this.setStatus("running");
  }

  setArgs(args) {
    this.argsNode.textContent = formatJson(args ?? {});
  }

  setTitle(title) {
    this.titleNode.textContent = title ? ` ${title}` : "";
  }

  setStatus(status, durationMs = null) {
    this.node.dataset.status = status;
    let label = TOOL_STATUS_LABELS[status] ?? status;
    if (durationMs) label += ` (${(durationMs / 1000).toFixed(1)} s)`;
    this.statusNode.textContent = label;
  }

  setResult(result) {
    this.resultNode.textContent = result ?? "";
    this.resultLabel.hidden = this.resultNode.hidden = false;
  }
}

/** The transcript list: `reset(messages)` from `init`, then `apply(event)` per event. */
export class TranscriptView {
  constructor(listNode) {
    this.list = listNode;
    this.messages = new Map();
    this.tools = new Map();
  }

  /** Replace everything with `messages` (the `init` transcript). */
  reset(messages) {
    this.messages.clear();
    this.tools.clear();
    this.list.replaceChildren();
    for (const message of messages ?? []) this._putMessage(message);
    this._updateBusy();
  }

  /** True while an agent message is still streaming. */
  get busy() {
    for (const message of this.messages.values()) {
      if (message.role === "assistant" && !message.complete) return true;
    }
    return false;
  }

  /** Fold one server event in; returns true when it was a transcript event. */
  apply(event) {
    switch (event.type) {
      case "message":
        this._putMessage(event.message);
        break;
      case "token":
        this._ensure(event.message_id).textPart(event.part_id).append(event.token);
        break;
      case "text_part_complete":
        this._ensure(event.message_id).textPart(event.part_id).set(event.text);
        break;
      case "tool_start":
        this._toolStart(event);
        break;
      case "tool_metadata": {
        const tool = this.tools.get(event.tool_call_id);
        if (tool && event.title) tool.setTitle(event.title);
        break;
      }
      case "tool_end":
        this._toolEnd(event);
        break;
      case "message_complete":
        this._ensure(event.message_id).setComplete(true);
        break;
      case "message_cancelled":
        if (event.message_id) this._ensure(event.message_id).setComplete(true, true);
        else for (const m of this.messages.values()) if (!m.complete) m.setComplete(true, true);
        break;
      default:
        return false;
    }
    this._updateBusy();
    return true;
  }

  /** Add a notice (status change or error) at the end of the transcript. */
  notice(text, kind = "info") {
    const node = el("li", `notice notice-${kind}`, text);
    this.list.append(node);
    node.scrollIntoView({ block: "nearest" });
  }

  _updateBusy() {
    this.list.setAttribute("aria-busy", this.busy ? "true" : "false");
  }

  _ensure(messageId) {
    let message = this.messages.get(messageId);
    if (!message) {
      // Events of a message whose stub we never saw: start an agent message.
      message = new MessageView(messageId, "assistant", null);
      message.setComplete(false);
      this.messages.set(messageId, message);
      this.list.append(message.node);
    }
    return message;
  }

  _putMessage(data) {
    const view = new MessageView(data.id, data.role, data.created_at);
    const old = this.messages.get(data.id);
    if (old) {
      for (const part of old.parts.values()) if (part.kind === "tool") this.tools.delete(part.toolCallId);
      old.node.replaceWith(view.node);
    } else {
      this.list.append(view.node);
    }
    this.messages.set(data.id, view);
    const parts = data.parts ?? [];
    for (const part of parts) {
      if (part.type === "text") {
        view.textPart(part.id).set(part.text ?? "");
      } else if (part.type === "tool") {
        const tool = this._addTool(view, part.id, part.tool_call_id, part.tool_name);
        tool.setArgs(part.args);
        if (part.title) tool.setTitle(part.title);
        tool.setStatus(part.status ?? "running", part.duration_ms);
        if (part.result !== null && part.result !== undefined) tool.setResult(part.result);
      } else if (part.type === "image") {
        const image = el("p", "part-image", "[image]");
        view.body.append(image);
      }
    }
    if (!parts.some((p) => p.type === "text") && data.content) {
      view.textPart(`${data.id}:content`).set(data.content);
    }
    view.setComplete(Boolean(data.is_complete) || data.role === "user", Boolean(data.cancelled));
    view.node.scrollIntoView({ block: "nearest" });
  }

  _addTool(message, partId, toolCallId, toolName) {
    const tool = new ToolPartView(partId, toolCallId, toolName);
    message.parts.set(partId, tool);
    message.body.append(tool.node);
    this.tools.set(toolCallId, tool);
    return tool;
  }

  _toolStart(event) {
    let tool = this.tools.get(event.tool_call_id);
    if (!tool) {
      if (!event.message_id) return;
      tool = this._addTool(this._ensure(event.message_id), event.part_id, event.tool_call_id,
        event.tool);
    }
    tool.setArgs(event.args);
  }

  _toolEnd(event) {
    let tool = this.tools.get(event.tool_call_id);
    if (!tool) {
      if (!event.message_id) return;
      tool = this._addTool(this._ensure(event.message_id), event.part_id, event.tool_call_id,
        event.tool);
      tool.setArgs({});
    }
    tool.setStatus(event.status ?? "completed", event.duration_ms);
    tool.setResult(event.result);
  }
}
