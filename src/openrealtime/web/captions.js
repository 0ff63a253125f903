// Captions: one line per conversation item, revised in place as deltas and final transcripts come.
//
// Lines are keyed by item id. A new line goes at the end, unless the server says where it belongs
// (input_audio_buffer.committed carries previous_item_id), so a transcript that arrives late still
// sits in turn order.

export class Captions {
  constructor(list, empty) {
    this.list = list;
    this.empty = empty;
    this.lines = new Map();
  }

  clear() {
    this.lines.clear();
    this.list.replaceChildren();
    this.empty.hidden = false;
  }

  // The line of an item, created at the end if it is new. role: "user", "assistant", "source",
  // "target" or "tool".
  line(itemId, role) {
    let line = this.lines.get(itemId);
    if (line === undefined) {
      const element = document.createElement("li");
      element.className = `line ${role}`;
      element.dataset.item = itemId;
      const who = document.createElement("span");
      who.className = "who";
      who.textContent = LABELS[role] ?? role;
      const text = document.createElement("p");
      text.className = "text";
      element.append(who, text);
      this.list.append(element);
      this.empty.hidden = true;
      line = { element, text, content: "", final: false };
      this.lines.set(itemId, line);
      this.scroll();
    }
    return line;
  }

  // Put an item's line right after the line of previousItemId (when both are known).
  place(itemId, previousItemId) {
    const line = this.lines.get(itemId);
    const previous = previousItemId ? this.lines.get(previousItemId) : undefined;
    if (line !== undefined && previous !== undefined && previous.element.nextSibling !== line.element) {
      previous.element.after(line.element);
    }
  }

  append(itemId, role, delta) {
    const line = this.line(itemId, role);
    if (line.final) return;
    line.content += delta;
    this.render(line, true);
  }

  finish(itemId, role, text) {
    const line = this.line(itemId, role);
    line.content = text ?? line.content;
    line.final = true;
    this.render(line, false);
  }

  // Every line as final (the session ended: nothing more will revise them).
  settle() {
    for (const line of this.lines.values()) {
      if (line.element.dataset.state === "listening") line.element.dataset.state = "";
      if (!line.final) {
        line.final = true;
        this.render(line, false);
      }
    }
  }

  // Drop an item's line (a turn that turned out to hold no words).
  remove(itemId) {
    const line = this.lines.get(itemId);
    if (line === undefined) return;
    line.element.remove();
    this.lines.delete(itemId);
    this.empty.hidden = this.lines.size > 0;
  }

  // Mark a line: "listening" while a turn is being spoken, "interrupted" when the answer was cut off.
  mark(itemId, role, state) {
    const line = this.line(itemId, role);
    line.element.dataset.state = state;
  }

  render(line, partial) {
    line.text.textContent = line.content.trim() || (partial ? "…" : "");
    line.element.classList.toggle("partial", partial);
    this.scroll();
  }

  // A tool call and, once it ran, its result.
  tool(callId, name, args) {
    const line = this.line(`tool:${callId}`, "tool");
    line.text.textContent = `${name}(${args})`;
    return line;
  }

  toolResult(callId, result) {
    const line = this.lines.get(`tool:${callId}`);
    if (line === undefined) return;
    const output = document.createElement("span");
    output.className = "result";
    output.textContent = ` → ${result}`;
    line.text.append(output);
  }

  scroll() {
    const box = this.list.parentElement;
    box.scrollTop = box.scrollHeight;
  }
}

const LABELS = {
  user: "You",
  assistant: "Assistant",
  source: "Heard",
  target: "Translation",
  caption: "Caption",
  tool: "Tool",
};
