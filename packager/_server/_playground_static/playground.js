// The packager playground: builds a form from the model's input schema (model.json), sends it to
// predict, renders the output for people. Plain browser JavaScript, no build step, no CDN.
// Every URL is relative to this page (served at <server>/playground/), so a path prefix works.
"use strict";

(function () {
  const KEY = "packager-api-key";
  // the sampling keywords the `openai` client's create() takes; others go in extra_body
  const OPENAI_KEYWORDS = new Set(["temperature", "top_p", "max_tokens", "stop", "seed", "n", "presence_penalty", "frequency_penalty", "logprobs", "user"]);
  const BIG_BODY = 4000; // past this many characters, the snippets read the body from input.json
  const FILE_WORDS = ["image", "img", "audio", "photo", "picture", "video", "file", "mask"];
  const MAGIC = [
    ["\x89PNG", "image/png"], ["\xff\xd8\xff", "image/jpeg"], ["GIF8", "image/gif"],
    ["ID3", "audio/mpeg"], ["\xff\xfb", "audio/mpeg"], ["\xff\xf3", "audio/mpeg"],
    ["OggS", "audio/ogg"], ["fLaC", "audio/flac"],
  ];
  const $ = (selector) => document.querySelector(selector);
  const state = { info: null, fields: [], root: null, busy: false };

  // -- elements ---------------------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "text") node.textContent = value;
      else if (name === "class") node.className = value;
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  // -- the API key and requests ---------------------------------------------------------------

  function keyHeaders() {
    const key = sessionStorage.getItem(KEY);
    return key ? { authorization: "Bearer " + key } : {};
  }

  function askKey(message) {
    const dialog = $("#key-dialog");
    $("#key-message").textContent = message;
    $("#key-input").value = "";
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => {
        const key = $("#key-input").value.trim();
        if (key) sessionStorage.setItem(KEY, key);
        resolve();
      }, { once: true });
      dialog.showModal();
    });
  }

  // fetch with the key; a 401 asks for the key (once it works, it is kept for the session) and retries.
  async function call(url, init) {
    for (;;) {
      const headers = Object.assign({}, (init && init.headers) || {}, keyHeaders());
      const response = await fetch(url, Object.assign({}, init, { headers }));
      if (response.status !== 401) return response;
      const had = sessionStorage.getItem(KEY);
      sessionStorage.removeItem(KEY);
      await askKey(had ? "The server refused that key. Enter the right one." : "This server needs an API key.");
    }
  }

  // -- schema -> fields -----------------------------------------------------------------------

  function resolve(schema, root) {
    let seen = 0;
    while (schema && schema.$ref && seen++ < 20) {
      const parts = schema.$ref.replace(/^#\//, "").split("/");
      let target = root;
      for (const part of parts) target = target ? target[part] : undefined;
      const rest = Object.assign({}, schema);
      delete rest.$ref;
      schema = Object.assign({}, target || {}, rest);
    }
    return schema || {};
  }

  // Optional[X] is anyOf [X, null]: the field is X, and may be left empty.
  function unwrap(schema, root) {
    schema = resolve(schema, root);
    const options = schema.anyOf || schema.oneOf;
    if (!options) return schema;
    const branches = options.map((s) => resolve(s, root)).filter((s) => s.type !== "null");
    const outer = Object.assign({}, schema);
    delete outer.anyOf;
    delete outer.oneOf;
    if (branches.length === 1) return Object.assign({}, branches[0], outer);
    if (branches.every((s) => "const" in s)) return Object.assign({ enum: branches.map((s) => s.const) }, outer);
    return Object.assign({ anyOf: options }, outer);
  }

  function isFile(name, schema) {
    if (schema.type !== "string") return false;
    if (schema.format === "base64" || schema.contentEncoding === "base64" || schema.contentMediaType) return true;
    return String(name).toLowerCase().split(/[^a-z0-9]+/).some((w) => FILE_WORDS.includes(w.replace(/s$/, "")));
  }

  function kindOf(name, schema) {
    if (Array.isArray(schema.enum)) return "enum";
    if ("const" in schema) return "enum";
    if (schema.type === "boolean") return "bool";
    if (schema.type === "integer" || schema.type === "number") return "number";
    if (schema.type === "string") return isFile(name, schema) ? "file" : "text";
    return "json"; // arrays, objects, unions, untyped: JSON text
  }

  function makeField(name, raw, required, root) {
    const schema = unwrap(raw, root);
    const field = { name, schema, required, kind: kindOf(name, schema), data: null };
    if (field.kind === "enum" && !Array.isArray(schema.enum)) schema.enum = [schema.const];
    field.node = fieldNode(field);
    return field;
  }

  function typeLabel(field) {
    const s = field.schema;
    if (field.kind === "file") return s.contentMediaType || "file, sent as base64";
    if (field.kind === "json") return (s.type || "any") + ", as JSON";
    return s.type || field.kind;
  }

  function bounds(schema) {
    const parts = [];
    if ("minimum" in schema) parts.push("\u2265 " + schema.minimum);
    if ("exclusiveMinimum" in schema) parts.push("> " + schema.exclusiveMinimum);
    if ("maximum" in schema) parts.push("\u2264 " + schema.maximum);
    if ("exclusiveMaximum" in schema) parts.push("< " + schema.exclusiveMaximum);
    if ("minLength" in schema) parts.push("at least " + schema.minLength + " characters");
    if ("maxLength" in schema) parts.push("at most " + schema.maxLength + " characters");
    return parts.join(", ");
  }

  function control(field) {
    const s = field.schema;
    const id = "field-" + state.fields.length;
    if (field.kind === "bool") return el("input", { type: "checkbox", id, class: "control" });
    if (field.kind === "number") {
      return el("input", {
        type: "number", id, class: "control",
        min: s.minimum ?? s.exclusiveMinimum, max: s.maximum ?? s.exclusiveMaximum,
        step: s.type === "integer" ? 1 : "any",
      });
    }
    if (field.kind === "enum") {
      const select = el("select", { id, class: "control" });
      if (!field.required && !("default" in s)) select.append(el("option", { value: "", text: "(none)" }));
      s.enum.forEach((v, i) => select.append(el("option", { value: String(i), text: typeof v === "string" ? v : JSON.stringify(v) })));
      return select;
    }
    if (field.kind === "file") {
      const accept = s.contentMediaType || (/audio/i.test(field.name) ? "audio/*" : /image|img|photo|picture|mask/i.test(field.name) ? "image/*" : undefined);
      return el("input", { type: "file", id, class: "control", accept });
    }
    const rows = field.kind === "json" ? 4 : 2;
    return el("textarea", { id, class: "control " + field.kind, rows, spellcheck: field.kind === "text" ? "true" : "false" });
  }

  function fieldNode(field) {
    const input = control(field);
    field.control = input;
    const title = field.schema.title || field.name;
    const label = el("label", { for: input.id },
      field.kind === "bool" ? input : null, title,
      field.required ? el("span", { class: "req", text: " *" }) : null,
      el("span", { class: "type", text: typeLabel(field) }));
    const hint = [field.schema.description, bounds(field.schema)].filter(Boolean).join(" \u2014 ");
    const status = field.kind === "file" ? el("span", { class: "hint file-status" }) : null;
    field.error = el("div", { class: "field-error", role: "alert" });
    if (field.kind === "file") input.addEventListener("change", () => readFile(field));
    return el("div", { class: "field " + (field.kind === "bool" ? "checkbox" : field.kind), "data-field": field.name },
      label, field.kind === "bool" ? null : input, status, hint ? el("small", { class: "hint", text: hint }) : null, field.error);
  }

  function readFile(field) {
    const file = field.control.files[0];
    field.data = null;
    if (!file) return setFileStatus(field, "");
    const reader = new FileReader();
    reader.onload = () => {
      field.data = String(reader.result).replace(/^data:[^,]*,/, "");
      setFileStatus(field, file.name + " (" + file.size + " bytes)");
    };
    reader.readAsDataURL(file);
  }

  function setFileStatus(field, text) {
    const status = field.node.querySelector(".file-status");
    if (status) status.textContent = text;
  }

  function buildForm(info) {
    const root = info.input || {};
    const top = resolve(root, root);
    const box = $("#fields");
    box.textContent = "";
    state.fields = [];
    state.root = null;
    if (top.type === "object" && top.properties) {
      const required = new Set(top.required || []);
      for (const [name, schema] of Object.entries(top.properties)) {
        const field = makeField(name, schema, required.has(name), root);
        state.fields.push(field);
        box.append(field.node);
      }
    } else {
      state.root = makeField("input", top, true, root); // a model whose input is not an object
      state.fields.push(state.root);
      box.append(state.root.node);
    }
    setValues(undefined);
  }

  // -- values in and out of the form ------------------------------------------------------------

  function setField(field, value) {
    const c = field.control;
    const s = field.schema;
    if (value === undefined) value = s.default;
    if (field.kind === "bool") c.checked = value === true;
    else if (field.kind === "enum") {
      const i = s.enum.findIndex((v) => JSON.stringify(v) === JSON.stringify(value));
      c.value = i >= 0 ? String(i) : c.options[0].value;
    } else if (field.kind === "file") {
      c.value = "";
      field.data = typeof value === "string" ? value : null;
      setFileStatus(field, field.data ? "example value (" + field.data.length + " characters of base64)" : "");
    } else if (field.kind === "json") c.value = value === undefined ? "" : JSON.stringify(value, null, 2);
    else c.value = value === undefined || value === null ? "" : String(value);
  }

  function setValues(input) {
    if (state.root) return setField(state.root, input);
    for (const field of state.fields) setField(field, input ? input[field.name] : undefined);
  }

  // [present, value]; a field left empty is left out, so the model's default applies.
  function readField(field) {
    const c = field.control;
    if (field.kind === "bool") return [true, c.checked];
    if (field.kind === "enum") return c.value === "" ? [false] : [true, field.schema.enum[Number(c.value)]];
    if (field.kind === "file") return field.data === null ? [false] : [true, field.data];
    if (c.value.trim() === "" && field.kind !== "text") return [false];
    if (field.kind === "number") return [true, Number(c.value)];
    if (field.kind === "json") {
      try {
        return [true, JSON.parse(c.value)];
      } catch (err) {
        throw showFieldError(field, "not valid JSON: " + err.message);
      }
    }
    return c.value === "" && !field.required ? [false] : [true, c.value];
  }

  function collect() {
    if (state.root) {
      const [present, value] = readField(state.root);
      return present ? value : null;
    }
    const body = {};
    for (const field of state.fields) {
      const [present, value] = readField(field);
      if (present) body[field.name] = value;
    }
    return body;
  }

  function showFieldError(field, message) {
    field.node.classList.add("invalid");
    field.error.textContent = field.error.textContent ? field.error.textContent + "; " + message : message;
    return field;
  }

  function clearErrors() {
    for (const field of state.fields) {
      field.node.classList.remove("invalid");
      field.error.textContent = "";
    }
    $("#form-error").textContent = "";
  }

  // A 422's `errors` go next to their fields (loc[0] names the field); the rest above the form.
  function showInputErrors(errors) {
    for (const error of errors) {
      const loc = error.loc || [];
      const field = state.root || state.fields.find((f) => f.name === loc[0]);
      const rest = state.root ? loc : loc.slice(1);
      const where = rest.length ? rest.join(".") + ": " : "";
      if (field) showFieldError(field, where + error.msg);
      else $("#form-error").textContent += (loc.join(".") || "input") + ": " + error.msg + " ";
    }
  }

  // -- output -----------------------------------------------------------------------------------

  function sniff(text) {
    const data = /^data:((?:image|audio)\/[\w.+-]+)[;,]/.exec(text);
    if (data) return { mime: data[1], src: text };
    if (text.length < 32 || !/^[A-Za-z0-9+/]+={0,2}$/.test(text.slice(0, 4096))) return null;
    let head;
    try {
      head = atob(text.slice(0, 24));
    } catch (err) {
      return null;
    }
    let mime = null;
    for (const [magic, type] of MAGIC) if (head.startsWith(magic)) mime = type;
    if (head.startsWith("RIFF")) mime = head.slice(8, 12) === "WEBP" ? "image/webp" : head.slice(8, 12) === "WAVE" ? "audio/wav" : null;
    return mime ? { mime, src: "data:" + mime + ";base64," + text } : null;
  }

  // The value with its media strings replaced by a short note; the media collected with their paths.
  function elide(value, path, media) {
    if (typeof value === "string") {
      const found = sniff(value);
      if (!found) return value;
      media.push(Object.assign({ path }, found));
      return "<" + found.mime + ", " + value.length + " characters, shown above>";
    }
    if (Array.isArray(value)) return value.map((v, i) => elide(v, path + "[" + i + "]", media));
    if (value && typeof value === "object") {
      const out = {};
      for (const [k, v] of Object.entries(value)) out[k] = elide(v, path + "[" + JSON.stringify(k) + "]", media);
      return out;
    }
    return value;
  }

  function mediaNode(item) {
    const player = item.mime.startsWith("image/") ? el("img", { src: item.src, alt: item.path }) : el("audio", { src: item.src, controls: true });
    return el("figure", {}, player, el("figcaption", { text: item.path + " \u00b7 " + item.mime }));
  }

  function render(value) {
    const media = [];
    const shown = elide(value, "output", media);
    const nodes = media.map(mediaNode);
    if (typeof value === "string") {
      if (!media.length) nodes.push(el("pre", { class: "text", text: value }));
    } else {
      nodes.push(el("pre", { class: "json", text: JSON.stringify(shown, null, 2) }));
    }
    return nodes;
  }

  function showOutput(nodes, failed) {
    const out = $("#output");
    out.className = "output" + (failed ? " error" : "");
    out.textContent = "";
    out.append(...nodes);
    return out;
  }

  function parseEvent(raw) {
    const event = { type: "message", data: [] };
    for (const line of raw.split(/\r?\n/)) {
      if (line.startsWith("event:")) event.type = line.slice(6).trim();
      else if (line.startsWith("data:")) event.data.push(line.slice(5).replace(/^ /, ""));
    }
    event.data = event.data.join("\n");
    return event;
  }

  // Server-Sent Events: each `data:` is one chunk, appended as it arrives; text chunks join up.
  async function readStream(response, started) {
    const out = showOutput([el("pre", { class: "text stream", text: "" })]);
    const text = out.firstChild;
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let chunks = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
        const event = parseEvent(buffer.slice(0, end));
        buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, "");
        if (event.type === "error") {
          const body = JSON.parse(event.data);
          out.append(el("div", { class: "field-error", text: "stream failed (" + body.status + "): " + body.error }));
          return meta("failed after " + chunks + " chunks", started);
        }
        if (event.type === "done") return meta(chunks + " chunks, done", started);
        const chunk = JSON.parse(event.data);
        chunks += 1;
        if (typeof chunk === "string" && !sniff(chunk)) text.textContent += chunk;
        else out.append(...render(chunk));
        meta(chunks + " chunks, streaming", started);
      }
    }
    meta(chunks + " chunks, connection closed", started);
  }

  function meta(text, started) {
    $("#output-meta").textContent = text + (started ? " \u00b7 " + Math.round(performance.now() - started) + " ms" : "");
  }

  // -- snippets -------------------------------------------------------------------------------

  function shellQuote(text) {
    return "'" + text.replace(/'/g, "'\\''") + "'";
  }

  function python(value, indent) {
    const pad = "    ".repeat(indent + 1);
    const end = "    ".repeat(indent);
    if (value === null) return "None";
    if (value === true) return "True";
    if (value === false) return "False";
    if (Array.isArray(value)) {
      if (!value.length) return "[]";
      return "[\n" + value.map((v) => pad + python(v, indent + 1)).join(",\n") + ",\n" + end + "]";
    }
    if (typeof value === "object") {
      const entries = Object.entries(value);
      if (!entries.length) return "{}";
      return "{\n" + entries.map(([k, v]) => pad + JSON.stringify(k) + ": " + python(v, indent + 1)).join(",\n") + ",\n" + end + "}";
    }
    return JSON.stringify(value);
  }

  function snippetNode(title, code, extra) {
    const copy = el("button", { type: "button", text: "copy" });
    copy.addEventListener("click", () => navigator.clipboard && navigator.clipboard.writeText(code).catch(() => {}));
    const id = "snippet-" + title.toLowerCase();
    return el("div", { class: "snippet" }, el("div", { class: "bar" }, el("span", { text: title }), extra, copy), el("pre", { id, text: code }));
  }

  function showSnippets(body) {
    const info = state.info;
    const url = new URL("../" + info.predict, location.href).href;
    const json = JSON.stringify(body);
    const big = json.length > BIG_BODY;
    const keyed = Boolean(sessionStorage.getItem(KEY));
    const curl = ["curl -s" + (info.streaming ? "N" : "")];
    if (info.streaming) curl.push("-H 'accept: text/event-stream'");
    if (keyed) curl.push('-H "authorization: Bearer $PACKAGER_API_KEY"');
    curl.push(shellQuote(url), "-d " + (big ? "@input.json" : shellQuote(json)));
    const py = ["import packager", ""];
    if (big) py.splice(0, 0, "import json");
    const root = new URL("../", location.href).href.replace(/\/$/, "");
    py.push("remote = packager.connect(" + JSON.stringify(root) + ")" + (keyed ? "  # the key: $PACKAGER_API_KEY" : ""));
    py.push("inputs = " + (big ? 'json.load(open("input.json"))' : python(body, 0)));
    py.push(info.streaming ? "for chunk in remote.predict(inputs):\n    print(chunk, end=\"\", flush=True)" : "print(remote.predict(inputs))");
    let download = null;
    if (big) {
      const href = URL.createObjectURL(new Blob([json], { type: "application/json" }));
      download = el("a", { href, download: "input.json", text: "input.json" });
    }
    const box = $("#snippets");
    box.className = "snippets";
    box.textContent = "";
    box.append(snippetNode("curl", curl.join(" \\\n  "), download), snippetNode("Python", py.join("\n"), null));
    const openai = openaiSnippet(body, keyed);
    if (openai) box.append(snippetNode("OpenAI", openai, null));
  }

  // The same request through the `openai` client, when the model serves the OpenAI routes
  // (runtime.openai) and the input is a chat (messages) or a completion (prompt).
  function openaiSnippet(body, keyed) {
    const kinds = state.info.openai || [];
    const chat = kinds.includes("chat") && Array.isArray(body.messages);
    if (!chat && !(kinds.includes("completion") && typeof body.prompt === "string")) return null;
    const key = chat ? "messages" : "prompt";
    const args = ["    model=" + JSON.stringify(state.info.name) + ",", "    " + key + "=" + python(body[key], 1) + ","];
    const extra = {}; // fields the client has no keyword for (top_k, repetition_penalty, ...)
    for (const [name, value] of Object.entries(body)) {
      if (name === key || name === "stream" || name === "messages" || name === "prompt" || value === null) continue;
      if (OPENAI_KEYWORDS.has(name)) args.push("    " + name + "=" + python(value, 1) + ",");
      else extra[name] = value;
    }
    if (Object.keys(extra).length) args.push("    extra_body=" + python(extra, 1) + ",");
    const lines = ["from openai import OpenAI", ""];
    if (keyed) lines.splice(0, 0, "import os");
    const apiKey = keyed ? 'os.environ["PACKAGER_API_KEY"]' : '"unused"';
    const base = new URL("../v1", location.href).href; // relative: keeps a proxy's path prefix
    lines.push("client = OpenAI(base_url=" + JSON.stringify(base) + ", api_key=" + apiKey + ")");
    const call = chat ? "client.chat.completions.create(" : "client.completions.create(";
    if (body.stream) {
      lines.push("stream = " + call, ...args, "    stream=True,", ")");
      lines.push("for chunk in stream:");
      lines.push("    print(chunk.choices[0]." + (chat ? "delta.content" : "text") + ' or "", end="", flush=True)');
      lines.push("print()");
    } else {
      lines.push("response = " + call, ...args, ")");
      lines.push("print(response.choices[0]." + (chat ? "message.content" : "text") + ")");
    }
    return lines.join("\n");
  }

  // -- actions ----------------------------------------------------------------------------------

  async function submit(event) {
    event.preventDefault();
    if (state.busy) return;
    clearErrors();
    let body;
    try {
      body = collect();
    } catch (field) {
      return field.control.focus();
    }
    state.busy = true;
    $("#submit").disabled = true;
    showSnippets(body);
    const started = performance.now();
    meta("running", null);
    try {
      await predict(body, started);
    } catch (err) {
      showOutput([el("pre", { text: "the request failed: " + err.message })], true);
    } finally {
      state.busy = false;
      $("#submit").disabled = false;
    }
  }

  async function predict(body, started) {
    const accept = state.info.streaming ? "text/event-stream" : "application/json";
    const response = await call("../" + state.info.predict, {
      method: "POST",
      headers: { "content-type": "application/json", accept },
      body: JSON.stringify(body),
    });
    const type = response.headers.get("content-type") || "";
    if (response.ok && type.startsWith("text/event-stream")) return readStream(response, started);
    const answer = await response.json();
    if (response.ok) {
      showOutput(render(answer));
      return meta("200", started);
    }
    if (response.status === 422 && Array.isArray(answer.errors)) showInputErrors(answer.errors);
    showOutput([el("pre", { text: response.status + ": " + answer.error })], true);
    meta(String(response.status), started);
  }

  function showExamples(info) {
    const box = $("#examples");
    box.textContent = "";
    for (const example of info.examples) {
      const button = el("button", { type: "button", class: "example", "data-example": example.name, text: "Example: " + example.name });
      button.addEventListener("click", () => {
        clearErrors();
        setValues(example.input);
      });
      box.append(button);
    }
  }

  async function watchReady(info) {
    const badge = $("#model-status");
    for (;;) {
      let answer = {};
      try {
        answer = await (await fetch("../" + info.ready)).json();
      } catch (err) {
        answer = { error: "the server does not answer" };
      }
      badge.textContent = answer.ready ? "ready" : answer.error || "loading";
      badge.className = "status" + (answer.ready ? " ready" : answer.error ? " failed" : "");
      if (answer.ready) return;
      await new Promise((done) => setTimeout(done, 1000));
    }
  }

  async function showApi() {
    const box = $("#endpoints");
    if (box.dataset.loaded) return;
    const response = await call("../" + state.info.openapi);
    const doc = await response.json();
    box.textContent = "";
    box.dataset.loaded = "1";
    box.append(el("p", { class: "meta", text: doc.info.title + " \u00b7 OpenAPI " + doc.openapi + " \u00b7 packager " + doc.info.version }));
    for (const [path, operations] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        box.append(el("details", { class: "endpoint" },
          el("summary", {}, el("span", { class: "method", text: method.toUpperCase() }), el("code", { text: path }), " \u2014 " + (operation.summary || "")),
          el("pre", { text: JSON.stringify(operation, null, 2) })));
      }
    }
  }

  function switchTab(name) {
    for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.dataset.tab === name);
    $("#tab-try").hidden = name !== "try";
    $("#tab-api").hidden = name !== "api";
    if (name === "api") showApi().catch((err) => { $("#endpoints").textContent = "cannot load the OpenAPI document: " + err.message; });
  }

  async function start() {
    for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => switchTab(tab.dataset.tab));
    const response = await call("model.json");
    if (!response.ok) throw new Error("model.json answered " + response.status);
    const info = (state.info = await response.json());
    document.title = info.name + " \u00b7 packager playground";
    $("#model-name").textContent = info.name;
    $("#model-description").textContent = info.description || "";
    buildForm(info);
    showExamples(info);
    $("#input-form").addEventListener("submit", submit);
    $("#reset").addEventListener("click", () => { clearErrors(); setValues(undefined); });
    document.body.dataset.ready = "1";
    watchReady(info);
  }

  document.addEventListener("DOMContentLoaded", () => {
    start().catch((err) => { $("#fields").textContent = "cannot start the playground: " + err.message; });
  });
})();
