// A form drawn from a JSON Schema (as pydantic writes it), checked here, posted as JSON.
//
// Supports: strings (formats date, date-time, time, email, uri; password / writeOnly as
// secrets), numbers and integers with limits, booleans, enums as selects, nested objects,
// arrays (add / remove items), string maps (key / value rows), optional (nullable) values,
// $ref / $defs. Anything else is edited as JSON. Each field carries data-path (a.b.0.c),
// the same path the server names in its errors, so errors show by their field.
"use strict";

(() => {
  const form = document.getElementById("job-form");
  if (!form) return;
  const schema = JSON.parse(document.getElementById("schema").textContent || "{}");
  const initial = JSON.parse(document.getElementById("initial").textContent || "{}") || {};
  const defs = schema.$defs || schema.definitions || {};
  const secretDefaults = form.dataset.secretDefaults === "1";
  // What the server shows instead of a stored secret (jobline.redact.HIDDEN). Sent back
  // unchanged, the server keeps the stored secret; anything typed replaces it.
  const HIDDEN = "\u2022\u2022\u2022\u2022\u2022\u2022";
  let counter = 0;

  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === false || v === undefined || v === null) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v === true ? "" : v);
    }
    node.append(...children.filter(Boolean));
    return node;
  };

  function lookup(ref) {
    const name = ref.split("/").pop();
    return defs[name] || {};
  }

  // Follow $ref, single allOf, and "X or null" unions; returns the schema and nullability.
  function resolve(s) {
    s = s || {};
    let nullable = false;
    for (let i = 0; i < 20 && (s.$ref || (s.allOf && s.allOf.length === 1)); i++) {
      const { $ref, allOf, ...rest } = s;
      s = { ...($ref ? lookup($ref) : allOf[0]), ...rest };
    }
    const alternatives = s.anyOf || s.oneOf;
    if (alternatives) {
      const real = alternatives.filter((a) => a.type !== "null");
      nullable = real.length < alternatives.length;
      if (real.length === 1) {
        const { anyOf, oneOf, ...rest } = s;
        const inner = resolve(real[0]);
        s = { ...inner.schema, ...rest };
        nullable = nullable || inner.nullable;
      }
    }
    if (Array.isArray(s.type)) {
      const types = s.type.filter((t) => t !== "null");
      nullable = nullable || types.length < s.type.length;
      if (types.length === 1) s = { ...s, type: types[0] };
    }
    return { schema: s, nullable };
  }

  function kindOf(s) {
    if (s.const !== undefined) return "const";
    if (Array.isArray(s.enum)) return "enum";
    if (s.anyOf || s.oneOf || Array.isArray(s.type)) return "json";
    if (s.type === "object" || s.properties) {
      if (s.properties && Object.keys(s.properties).length) return "object";
      const values = resolve(s.additionalProperties === true ? {} : s.additionalProperties).schema;
      return ["string", "number", "integer", "boolean"].includes(values.type) ? "map" : "json";
    }
    if (s.type === "array") {
      const items = resolve(s.items).schema;
      return items.type || items.enum || items.properties ? "array" : "json";
    }
    if (["string", "number", "integer", "boolean"].includes(s.type)) return s.type;
    return "json";
  }

  const pathOf = (path) => path.join(".");
  const idFor = () => `f${++counter}`;
  const isSecret = (s) => s.writeOnly === true || s.format === "password";

  function labelText(s, key) {
    return s.title || String(key).replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());
  }

  function limitsText(s) {
    const lo = s.minimum ?? s.exclusiveMinimum;
    const hi = s.maximum ?? s.exclusiveMaximum;
    const open = s.exclusiveMinimum !== undefined || s.exclusiveMaximum !== undefined;
    if (lo !== undefined && hi !== undefined) return open ? `Between ${lo} and ${hi}, exclusive.` : `From ${lo} to ${hi}.`;
    if (lo !== undefined) return `${s.exclusiveMinimum !== undefined ? "Above" : "At least"} ${lo}.`;
    if (hi !== undefined) return `${s.exclusiveMaximum !== undefined ? "Below" : "At most"} ${hi}.`;
    if (s.maxLength !== undefined && s.maxLength <= 1000) return `Up to ${s.maxLength} characters.`;
    return "";
  }

  function helpText(s) {
    const text = (s.description || "").trim();
    return [text && !/[.!?:)]$/.test(text) ? `${text}.` : text, limitsText(s)].filter(Boolean).join(" ");
  }

  // A field: a wrapper with a label, help and error slot; `node` reads and checks it.
  function wrap(path, s, key, required, control, id, extraClass = "") {
    const label = key === null ? null : el("label", { for: id }, labelText(s, key));
    if (label && required) label.append(el("span", { class: "req", "aria-hidden": "true", text: "*" }));
    const help = helpText(s);
    const helpId = help ? `${id}-help` : null;
    const input = control.matches("input, select, textarea") ? control : control.querySelector("input");
    if (helpId && input) input.setAttribute("aria-describedby", helpId);
    return el(
      "div",
      { class: `field ${extraClass}`.trim(), "data-path": pathOf(path) },
      label,
      control,
      help ? el("p", { class: "help", id: helpId, text: help }) : null,
    );
  }

  function build(s0, path, value, required, key) {
    const { schema: s, nullable } = resolve(s0);
    const kind = kindOf(s);
    const builder = BUILDERS[kind] || BUILDERS.json;
    return builder(s, path, value === undefined ? s.default : value, required && !nullable, key, nullable);
  }

  function err(path, message) {
    return [{ field: pathOf(path), message }];
  }

  const BUILDERS = {
    const(s) {
      return { element: null, get: () => s.const, check: () => [] };
    },

    string(s, path, value, required, key) {
      const id = idFor();
      const secret = isSecret(s);
      const masked = secret && value === HIDDEN;
      const keepDefault = secret && secretDefaults && value !== undefined && value !== null && value !== "";
      const type = secret ? "password" : { email: "email", uri: "url", date: "date", "date-time": "datetime-local", time: "time" }[s.format] || "text";
      const long = !secret && (s.format === "textarea" || s.format === "multiline");
      const input = el(long ? "textarea" : "input", {
        id,
        name: pathOf(path),
        type: long ? undefined : type,
        required: required && !keepDefault,
        minlength: s.minLength,
        maxlength: s.maxLength,
        pattern: s.pattern,
        placeholder: keepDefault ? "Leave empty to keep the template's value" : s.examples?.[0],
        autocomplete: secret ? "new-password" : "off",
        step: type === "datetime-local" || type === "time" ? "1" : undefined,
      });
      if (!secret && value !== undefined && value !== null) {
        input.value = type === "datetime-local" ? toLocalInput(value) : String(value);
      } else if (masked) {
        input.value = HIDDEN; // the stored secret, never sent to the browser
      }
      let control = input;
      if (secret) {
        const toggle = el("button", { type: "button", class: "btn small", "aria-controls": id, text: "Show" });
        toggle.onclick = () => {
          const shown = input.type === "text";
          input.type = shown ? "password" : "text";
          toggle.textContent = shown ? "Show" : "Hide";
        };
        control = el("div", { class: "secret" }, input, toggle);
      }
      return {
        element: wrap(path, s, key, required && !keepDefault, control, id),
        get() {
          if (input.value === "") return undefined;
          if (type === "datetime-local") return new Date(input.value).toISOString();
          return input.value;
        },
        check() {
          const v = input.value;
          if (v === "") return required && !keepDefault ? err(path, "This field is required.") : [];
          if (masked && v === HIDDEN) return []; // unchanged: the server keeps the stored one
          if (s.minLength !== undefined && v.length < s.minLength) return err(path, `At least ${s.minLength} characters.`);
          if (s.maxLength !== undefined && v.length > s.maxLength) return err(path, `At most ${s.maxLength} characters.`);
          if (s.pattern && !new RegExp(s.pattern, "u").test(v)) return err(path, `Must match ${s.pattern}.`);
          if (input.validity && input.validity.typeMismatch) return err(path, `Not a valid ${type === "url" ? "URL" : type}.`);
          return [];
        },
      };
    },

    number(s, path, value, required, key) {
      const id = idFor();
      const integer = s.type === "integer";
      const input = el("input", {
        id,
        name: pathOf(path),
        type: "number",
        inputmode: integer ? "numeric" : "decimal",
        required,
        min: s.minimum ?? s.exclusiveMinimum,
        max: s.maximum ?? s.exclusiveMaximum,
        step: integer ? s.multipleOf || 1 : s.multipleOf || "any",
      });
      if (value !== undefined && value !== null) input.value = String(value);
      return {
        element: wrap(path, s, key, required, input, id),
        get: () => (input.value === "" ? undefined : Number(input.value)),
        check() {
          if (input.validity && input.validity.badInput) return err(path, "Enter a number.");
          if (input.value === "") return required ? err(path, "This field is required.") : [];
          const n = Number(input.value);
          if (integer && !Number.isInteger(n)) return err(path, "Enter a whole number.");
          if (s.minimum !== undefined && n < s.minimum) return err(path, `Must be at least ${s.minimum}.`);
          if (s.maximum !== undefined && n > s.maximum) return err(path, `Must be at most ${s.maximum}.`);
          if (s.exclusiveMinimum !== undefined && n <= s.exclusiveMinimum) return err(path, `Must be above ${s.exclusiveMinimum}.`);
          if (s.exclusiveMaximum !== undefined && n >= s.exclusiveMaximum) return err(path, `Must be below ${s.exclusiveMaximum}.`);
          return [];
        },
      };
    },

    integer(...args) {
      return BUILDERS.number(...args);
    },

    boolean(s, path, value, required, key) {
      const id = idFor();
      const input = el("input", { id, name: pathOf(path), type: "checkbox" });
      input.checked = value === true;
      const element = wrap(path, s, key, false, input, id, "check");
      // A checkbox reads better with its label after it.
      const label = element.querySelector("label");
      if (label) element.insertBefore(input, label);
      return { element, get: () => input.checked, check: () => [] };
    },

    enum(s, path, value, required, key, nullable) {
      const id = idFor();
      const select = el("select", { id, name: pathOf(path), required });
      const hasDefault = value !== undefined && value !== null;
      if (!hasDefault) {
        select.append(el("option", { value: "", text: required ? "Choose…" : nullable ? "(none)" : "(default)" }));
      }
      s.enum.forEach((option, i) => {
        const o = el("option", { value: String(i), text: option === null ? "(none)" : String(option) });
        if (hasDefault && option === value) o.selected = true;
        select.append(o);
      });
      return {
        element: wrap(path, s, key, required, select, id),
        get: () => (select.value === "" ? undefined : s.enum[Number(select.value)]),
        check: () => (select.value === "" && required ? err(path, "Choose one.") : []),
      };
    },

    object(s, path, value, required, key) {
      const req = new Set(s.required || []);
      const values = value && typeof value === "object" ? value : {};
      const children = Object.entries(s.properties).map(([name, sub]) => ({
        name,
        node: build(sub, [...path, name], values[name], req.has(name), name),
      }));
      const parts = children.map((c) => c.node.element).filter(Boolean);
      const meaningful = (node) => {
        const v = node.get();
        return node.element !== null && v !== undefined && v !== false;
      };
      const given = () => children.some((c) => meaningful(c.node));
      let element;
      if (key === null) element = el("div", { class: "fields", "data-path": pathOf(path) }, ...parts);
      else {
        const legend = el("legend", {}, labelText(s, key));
        if (required) legend.append(el("span", { class: "req", "aria-hidden": "true", text: "*" }));
        const help = helpText(s);
        element = el("fieldset", { "data-path": pathOf(path) }, legend, help ? el("p", { class: "help", text: help }) : null, ...parts);
      }
      return {
        element,
        get() {
          const out = {};
          for (const { name, node } of children) {
            const v = node.get();
            if (v !== undefined) out[name] = v;
          }
          // An optional nested object the user left alone is left out (its default applies).
          return required || key === null || given() ? out : undefined;
        },
        check() {
          if (!required && key !== null && !given()) return [];
          return children.flatMap((c) => c.node.check());
        },
      };
    },

    array(s, path, value, required, key) {
      const list = el("div", { class: "items" });
      const add = el("button", { type: "button", class: "btn small", text: `Add ${labelText(resolve(s.items).schema, "item").toLowerCase()}` });
      const nodes = [];
      const id = idFor();
      const fieldset = el(
        "fieldset",
        { "data-path": pathOf(path), id },
        el("legend", {}, labelText(s, key), required ? el("span", { class: "req", "aria-hidden": "true", text: "*" }) : null),
        helpText(s) ? el("p", { class: "help", text: helpText(s) }) : null,
        list,
        el("div", { class: "row" }, add),
      );
      const addItem = (v) => {
        const entry = {};
        // Items are built with the path of their position; a removal renumbers the rest.
        const node = build(s.items, [...path, nodes.length], v, true, `${labelText(resolve(s.items).schema, "Item")}`);
        const remove = el("button", { type: "button", class: "btn small ghost", "aria-label": "Remove this item", text: "Remove" });
        const row = el("div", { class: "item" }, node.element || el("span", { text: "(fixed)" }), remove);
        Object.assign(entry, { node, row });
        remove.onclick = () => {
          nodes.splice(nodes.indexOf(entry), 1);
          row.remove();
          relabel();
        };
        nodes.push(entry);
        list.append(row);
      };
      const relabel = () =>
        nodes.forEach((entry, i) => {
          for (const f of entry.row.querySelectorAll("[data-path]")) {
            const parts = f.dataset.path.split(".");
            parts[path.length] = String(i);
            f.dataset.path = parts.join(".");
          }
        });
      add.onclick = () => {
        addItem(undefined);
        const first = list.lastElementChild.querySelector("input, select, textarea");
        if (first) first.focus();
      };
      (Array.isArray(value) ? value : []).forEach(addItem);
      return {
        element: fieldset,
        get() {
          const out = nodes.map((n) => n.node.get());
          return out.length || required ? out : undefined;
        },
        check() {
          const n = nodes.length;
          const own = [];
          if (required && n === 0 && s.minItems === undefined) own.push(...err(path, "Add at least one."));
          if (s.minItems !== undefined && n < s.minItems && (n || required)) own.push(...err(path, `Add at least ${s.minItems}.`));
          if (s.maxItems !== undefined && n > s.maxItems) own.push(...err(path, `At most ${s.maxItems}.`));
          return own.concat(nodes.flatMap((entry, i) => entry.node.check().map((e) => ({ ...e, field: renamed(e.field, i) }))));
        },
      };
      function renamed(field, i) {
        const parts = field.split(".");
        parts[path.length] = String(i);
        return parts.join(".");
      }
    },

    map(s, path, value, required, key) {
      const values = resolve(s.additionalProperties === true ? { type: "string" } : s.additionalProperties).schema;
      const list = el("div", { class: "items" });
      const rows = [];
      const add = el("button", { type: "button", class: "btn small", text: "Add entry" });
      const addRow = (k = "", v = "") => {
        const keyInput = el("input", { "aria-label": "Name", placeholder: "name" });
        const valueInput = el("input", { "aria-label": "Value", placeholder: "value" });
        keyInput.value = k;
        valueInput.value = v === undefined || v === null ? "" : String(v);
        const remove = el("button", { type: "button", class: "btn small ghost", text: "Remove" });
        const row = el("div", { class: "pair" }, keyInput, valueInput, remove);
        const entry = { keyInput, valueInput, row };
        remove.onclick = () => {
          rows.splice(rows.indexOf(entry), 1);
          row.remove();
        };
        rows.push(entry);
        list.append(row);
      };
      add.onclick = () => {
        addRow();
        rows[rows.length - 1].keyInput.focus();
      };
      Object.entries(value && typeof value === "object" ? value : {}).forEach(([k, v]) => addRow(k, v));
      const convert = (text) => {
        if (values.type === "string") return text;
        if (values.type === "boolean") return text === "true";
        return Number(text);
      };
      return {
        element: el(
          "fieldset",
          { "data-path": pathOf(path) },
          el("legend", {}, labelText(s, key), required ? el("span", { class: "req", "aria-hidden": "true", text: "*" }) : null),
          helpText(s) ? el("p", { class: "help", text: helpText(s) }) : null,
          list,
          el("div", { class: "row" }, add),
        ),
        get() {
          const out = {};
          for (const r of rows) if (r.keyInput.value.trim()) out[r.keyInput.value.trim()] = convert(r.valueInput.value);
          return Object.keys(out).length || required ? out : undefined;
        },
        check() {
          for (const r of rows) {
            const name = r.keyInput.value.trim();
            if (!name) continue;
            const v = r.valueInput.value;
            if ((values.type === "number" || values.type === "integer") && (v === "" || Number.isNaN(Number(v)))) {
              return err([...path, name], `${name}: enter a number.`);
            }
          }
          return [];
        },
      };
    },

    json(s, path, value, required, key) {
      const id = idFor();
      const area = el("textarea", { id, name: pathOf(path), spellcheck: "false", rows: "3", placeholder: "JSON" });
      if (value !== undefined && value !== null) area.value = JSON.stringify(value, null, 2);
      const element = wrap(path, s, key, required, area, id);
      const help = element.querySelector(".help");
      const note = "Write JSON.";
      if (help) help.textContent = `${help.textContent} ${note}`;
      else element.append(el("p", { class: "help", text: note }));
      return {
        element,
        get() {
          if (area.value.trim() === "") return undefined;
          try {
            return JSON.parse(area.value);
          } catch {
            return area.value;
          }
        },
        check() {
          if (area.value.trim() === "") return required ? err(path, "This field is required.") : [];
          try {
            JSON.parse(area.value);
          } catch (e) {
            return err(path, `Not valid JSON: ${e.message}`);
          }
          return [];
        },
      };
    },
  };

  function toLocalInput(text) {
    const d = new Date(text);
    if (Number.isNaN(d.getTime())) return "";
    const pad = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  // ---- errors ---------------------------------------------------------------------------
  const banner = form.querySelector(".form-error");

  function clearErrors() {
    banner.hidden = true;
    banner.textContent = "";
    for (const e of form.querySelectorAll(".field-error")) e.remove();
    for (const f of form.querySelectorAll(".invalid")) f.classList.remove("invalid");
    for (const i of form.querySelectorAll("[aria-invalid]")) i.removeAttribute("aria-invalid");
  }

  function showErrors(errors) {
    const unplaced = [];
    let first = null;
    for (const { field, message } of errors) {
      let target = null;
      const parts = (field || "").split(".").filter((p) => p !== "");
      for (let n = parts.length; n > 0 && !target; n--) {
        target = form.querySelector(`[data-path="${CSS.escape(parts.slice(0, n).join("."))}"]`);
      }
      if (!target) {
        unplaced.push(field ? `${field}: ${message}` : message);
        continue;
      }
      if (target.closest(".options")) target.closest(".options").open = true;
      target.classList.add("invalid");
      const id = idFor();
      const msg = el("p", { class: "field-error", id, text: message });
      const control = target.querySelector("input, select, textarea");
      const legend = target.querySelector(":scope > legend");
      if (legend) legend.after(msg);
      else target.append(msg);
      if (control && !target.matches("fieldset")) {
        control.setAttribute("aria-invalid", "true");
        control.setAttribute("aria-describedby", `${id} ${control.getAttribute("aria-describedby") || ""}`.trim());
      }
      first = first || control || target;
    }
    if (unplaced.length) {
      banner.textContent = unplaced.join(" · ");
      banner.hidden = false;
      first = first || banner;
    }
    if (first) {
      first.scrollIntoView({ block: "center", behavior: "smooth" });
      if (first.focus) first.focus({ preventScroll: true });
    }
  }

  // ---- build and submit ----------------------------------------------------------------
  const root = build(schema, [], initial, true, null);
  const fields = document.getElementById("fields");
  fields.replaceChildren(root.element || el("p", { class: "muted", text: "This job takes no inputs." }));
  if (root.element && !root.element.children.length) root.element.append(el("p", { class: "muted", text: "This job takes no inputs." }));

  form.addEventListener("input", (e) => {
    const field = e.target.closest(".invalid");
    if (field) {
      field.classList.remove("invalid");
      for (const m of field.querySelectorAll(":scope > .field-error")) m.remove();
      e.target.removeAttribute("aria-invalid");
    }
  });

  // Controls outside the schema ([data-group] sections: options, a schedule's rule) are
  // sent as body[group][name]; the browser's own constraint checks cover them.
  function groups(errors) {
    const out = {};
    for (const section of form.querySelectorAll("[data-group]")) {
      const values = (out[section.dataset.group] ||= {});
      for (const input of section.querySelectorAll("[name]")) {
        const field = `${section.dataset.group}.${input.name}`;
        if (!input.checkValidity()) errors.push({ field, message: input.validationMessage });
        if (input.type === "checkbox") values[input.name] = input.checked;
        else if (input.value === "") continue;
        else values[input.name] = input.type === "number" ? Number(input.value) : input.value;
      }
    }
    return out;
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors();
    const errors = root.check();
    const extra = groups(errors);
    if (errors.length) {
      showErrors(errors);
      return;
    }
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    try {
      const res = await fetch(form.action, {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          Accept: "application/json",
          "X-CSRFToken": form.querySelector("[name=csrfmiddlewaretoken]").value,
        },
        body: JSON.stringify({
          type: form.dataset.type || undefined,
          template: form.dataset.template || undefined,
          from: form.dataset.from || undefined,
          inputs: root.get() || {},
          ...extra,
        }),
      });
      const body = await res.json().catch(() => ({}));
      if (res.status === 201) {
        window.location.assign(body.url);
        return;
      }
      showErrors(body.errors || [{ field: "", message: body.detail || `The server answered ${res.status}.` }]);
    } catch (error) {
      showErrors([{ field: "", message: `Could not reach the server: ${error.message}` }]);
    } finally {
      button.disabled = false;
    }
  });
})();
