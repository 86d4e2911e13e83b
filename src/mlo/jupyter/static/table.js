// The run and model tables of mlo's widgets: sortable headers, a checkbox per row, and either a pager (a page of
// rows) or, with `virtual`, one scrolling table of every row in which only the rows in view exist in the page and
// only the rows near the view are sent (the view asks through `viewport`; Python answers with `offset` + `rows`).
// Columns can be hidden (`hidden`), pinned to the left (`pinned`) and resized (`widths`); the table never grows
// wider than its cell: it scrolls inside it. Python owns the data; this view renders it and reports clicks back
// through the synced traits `sort`, `selected`, `page`, `viewport`, `hidden`, `pinned`, `widths` and
// `select_matching`.

const ROW = 24; // px; rows have one fixed height so the scroll position says which rows are in view
const HEIGHT = 432; // the scrolling table's height (18 rows)
const OVERSCAN = 12;

function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "mlo-dt";
  el.appendChild(root);
  let scroller = null; // the virtual table's scrolling box, kept across redraws (it holds the scroll position)
  let bar = null;
  let lastWindow = "";

  function cell(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  }

  function save(name, value) {
    model.set(name, value);
    model.save_changes();
  }

  function toggle(id, on) {
    let selected = model.get("selected").slice();
    if (!model.get("multiple")) selected = on ? [id] : [];
    else if (on && !selected.includes(id)) selected.push(id);
    else if (!on) selected = selected.filter((s) => s !== id);
    save("selected", selected);
  }

  function shownColumns() {
    const hidden = new Set(model.get("hidden") || []);
    const pinned = model.get("pinned") || [];
    const cols = model.get("columns").map((c, i) => ({ ...c, index: i })).filter((c) => !hidden.has(c.key));
    const first = pinned.map((k) => cols.find((c) => c.key === k)).filter(Boolean);
    return first.concat(cols.filter((c) => !pinned.includes(c.key)));
  }

  function widthOf(col) {
    const widths = model.get("widths") || {};
    if (widths[col.key]) return widths[col.key];
    if (col.key === "run_id" || col.key === "status") return 90;
    if (col.key === "name") return 170;
    if (col.key === "start_time") return 150;
    return 110;
  }

  // -- the header: sort on click, a pin, a drag handle to resize ------------------------------------------------
  function header(cols, offsets) {
    const sort = model.get("sort") || {};
    const rows = model.get("rows");
    const selected = new Set(model.get("selected"));
    const head = document.createElement("tr");
    const all = cell("th", null, "mlo-dt-check mlo-dt-pinned");
    all.style.left = "0px";
    if (model.get("multiple") && rows.length && !model.get("virtual")) {
      const box = document.createElement("input");
      box.type = "checkbox";
      box.title = "select every run of this page";
      box.checked = rows.every((r) => selected.has(r.id));
      box.addEventListener("change", () => {
        let ids = model.get("selected").filter((s) => !rows.some((r) => r.id === s));
        if (box.checked) ids = ids.concat(rows.map((r) => r.id));
        save("selected", ids);
      });
      all.appendChild(box);
    }
    head.appendChild(all);
    const pinned = model.get("pinned") || [];
    for (const col of cols) {
      const th = cell("th", null, [col.numeric ? "mlo-dt-num" : "", col.highlight ? "mlo-dt-diff" : ""].join(" ").trim());
      th.dataset.column = col.key;
      th.title = col.title || col.key;
      th.style.width = th.style.minWidth = th.style.maxWidth = widthOf(col) + "px";
      if (pinned.includes(col.key)) {
        th.classList.add("mlo-dt-pinned");
        th.style.left = offsets[col.key] + "px";
      }
      const label = cell("span", col.label + (col.key === sort.column ? (sort.ascending ? " ▲" : " ▼") : ""), "mlo-dt-label");
      th.appendChild(label);
      if (col.sortable !== false) {
        th.classList.add("mlo-dt-sortable");
        label.addEventListener("click", () => {
          const ascending = sort.column === col.key ? !sort.ascending : col.key !== "start_time";
          save("sort", { column: col.key, ascending });
        });
      }
      if (model.get("virtual")) {
        const pin = cell("button", "⇤", "mlo-dt-pin" + (pinned.includes(col.key) ? " mlo-dt-pin-on" : ""));
        pin.title = pinned.includes(col.key) ? "unpin this column" : "pin this column to the left";
        pin.addEventListener("click", (e) => {
          e.stopPropagation();
          save("pinned", pinned.includes(col.key) ? pinned.filter((k) => k !== col.key) : pinned.concat([col.key]));
        });
        th.appendChild(pin);
        const grip = cell("span", null, "mlo-dt-grip");
        grip.title = "drag to resize";
        grip.addEventListener("pointerdown", (e) => resize(e, col, th));
        th.appendChild(grip);
      }
      head.appendChild(th);
    }
    return head;
  }

  function resize(event, col, th) {
    event.preventDefault();
    event.stopPropagation();
    const x0 = event.clientX;
    const w0 = widthOf(col);
    let w = w0;
    const move = (e) => {
      w = Math.max(40, Math.round(w0 + e.clientX - x0));
      th.style.width = th.style.minWidth = th.style.maxWidth = w + "px";
    };
    const up = () => {
      window.removeEventListener("pointermove", move);
      window.removeEventListener("pointerup", up);
      save("widths", { ...(model.get("widths") || {}), [col.key]: w });
    };
    window.addEventListener("pointermove", move);
    window.addEventListener("pointerup", up);
  }

  function rowNode(row, cols, offsets, selected, pinned) {
    const tr = document.createElement("tr");
    if (!row) {
      tr.className = "mlo-dt-loading";
      tr.appendChild(cell("td", "…", "mlo-dt-check"));
      for (let i = 0; i < cols.length; i++) tr.appendChild(cell("td", ""));
      return tr;
    }
    tr.dataset.id = row.id;
    if (selected.has(row.id)) tr.classList.add("mlo-dt-selected");
    const td = cell("td", null, "mlo-dt-check mlo-dt-pinned");
    td.style.left = "0px";
    const box = document.createElement("input");
    box.type = model.get("multiple") ? "checkbox" : "radio";
    box.checked = selected.has(row.id);
    box.addEventListener("change", () => toggle(row.id, box.checked));
    td.appendChild(box);
    tr.appendChild(td);
    for (const col of cols) {
      const text = row.cells[col.index];
      const td = cell("td", text, [col.numeric ? "mlo-dt-num" : "", col.highlight ? "mlo-dt-diff" : ""].join(" ").trim());
      if (text && text.length > 14) td.title = text;
      if (pinned.includes(col.key)) {
        td.classList.add("mlo-dt-pinned");
        td.style.left = offsets[col.key] + "px";
      }
      if (col.key === "status") td.replaceChildren(cell("span", text, "mlo-dt-badge mlo-dt-" + text));
      tr.appendChild(td);
    }
    tr.addEventListener("click", (event) => {
      if (event.target.tagName === "INPUT") return;
      toggle(row.id, !selected.has(row.id));
    });
    return tr;
  }

  function layout() {
    const cols = shownColumns();
    const pinned = model.get("pinned") || [];
    const offsets = {};
    let left = 34;
    for (const col of cols) {
      if (pinned.includes(col.key)) {
        offsets[col.key] = left;
        left += widthOf(col) + 16; // and its padding
      }
    }
    return { cols, offsets, pinned };
  }

  // -- the column chooser ----------------------------------------------------------------------------------------
  function chooser(open) {
    const details = cell("details", null, "mlo-dt-chooser");
    details.open = !!open;
    details.appendChild(cell("summary", "Columns"));
    const list = cell("div", null, "mlo-dt-chooser-list");
    const hidden = new Set(model.get("hidden") || []);
    for (const col of model.get("columns")) {
      const label = cell("label", null);
      label.dataset.column = col.key;
      const box = document.createElement("input");
      box.type = "checkbox";
      box.checked = !hidden.has(col.key);
      box.addEventListener("change", () => {
        const now = new Set(model.get("hidden") || []);
        if (box.checked) now.delete(col.key);
        else now.add(col.key);
        save("hidden", Array.from(now));
      });
      label.append(box, " " + (col.title || col.key));
      list.appendChild(label);
    }
    details.appendChild(list);
    return details;
  }

  // -- drawing ---------------------------------------------------------------------------------------------------
  function draw() {
    if (model.get("virtual")) return drawVirtual(true);
    const { cols, offsets, pinned } = layout();
    const rows = model.get("rows");
    const selected = new Set(model.get("selected"));
    root.replaceChildren();
    const box = cell("div", null, "mlo-dt-box");
    const table = cell("table", null, "mlo-dt-table");
    const thead = document.createElement("thead");
    thead.appendChild(header(cols, offsets));
    table.appendChild(thead);
    const body = document.createElement("tbody");
    for (const row of rows) body.appendChild(rowNode(row, cols, offsets, selected, pinned));
    table.appendChild(body);
    box.appendChild(table);
    root.appendChild(box);

    const pages = model.get("pages");
    const page = model.get("page");
    const pager = cell("div", null, "mlo-dt-pager");
    const prev = cell("button", "◀");
    prev.disabled = page <= 0;
    prev.addEventListener("click", () => save("page", page - 1));
    const next = cell("button", "▶");
    next.disabled = page >= pages - 1;
    next.addEventListener("click", () => save("page", page + 1));
    pager.append(prev, cell("span", ` page ${page + 1} of ${pages} `), next, cell("span", model.get("summary"), "mlo-dt-summary"));
    root.appendChild(pager);
  }

  function drawVirtual(full) {
    const total = model.get("total");
    if (!scroller || !root.contains(scroller)) {
      root.replaceChildren();
      bar = cell("div", null, "mlo-dt-toolbar");
      // the scrolling box lives as long as the view: redraws replace its table, so the scroll position stays
      scroller = cell("div", null, "mlo-dt-box mlo-dt-scroll");
      scroller.style.maxHeight = HEIGHT + ROW + "px";
      scroller.addEventListener("scroll", () => drawVirtual(false), { passive: true });
      root.append(bar, scroller);
      full = true;
    }
    if (full) {
      const open = bar.querySelector("details[open]") !== null;
      bar.replaceChildren(chooser(open));
      if (model.get("multiple")) {
        const all = cell("button", `Select all ${total.toLocaleString()} matching`, "mlo-dt-select-all");
        all.title = "tick every run that matches the filter";
        all.disabled = !total;
        all.addEventListener("click", () => save("select_matching", (model.get("select_matching") || 0) + 1));
        const none = cell("button", "Clear selection", "mlo-dt-clear");
        none.disabled = !model.get("selected").length;
        none.addEventListener("click", () => save("selected", []));
        bar.append(all, none);
      }
      bar.appendChild(cell("span", model.get("summary"), "mlo-dt-summary"));
      lastWindow = "";
    }
    const { cols, offsets, pinned } = layout();
    const first = Math.max(0, Math.floor(scroller.scrollTop / ROW) - OVERSCAN);
    const last = Math.min(total, Math.ceil((scroller.scrollTop + HEIGHT) / ROW) + OVERSCAN);
    const offset = model.get("offset");
    const rows = model.get("rows");
    const key = `${first}:${last}:${offset}:${rows.length}`;
    if (!full && key === lastWindow) return;
    lastWindow = key;
    const selected = new Set(model.get("selected"));
    const table = cell("table", null, "mlo-dt-table");
    const thead = document.createElement("thead");
    thead.appendChild(header(cols, offsets));
    table.appendChild(thead);
    const body = document.createElement("tbody");
    const spacer = (h) => {
      const tr = cell("tr", null, "mlo-dt-spacer");
      tr.style.height = h + "px";
      return tr;
    };
    if (first > 0) body.appendChild(spacer(first * ROW));
    let missing = false;
    for (let i = first; i < last; i++) {
      const row = i >= offset && i < offset + rows.length ? rows[i - offset] : null;
      if (!row) missing = true;
      const tr = rowNode(row, cols, offsets, selected, pinned);
      tr.dataset.index = String(i);
      body.appendChild(tr);
    }
    if (last < total) body.appendChild(spacer((total - last) * ROW));
    table.appendChild(body);
    scroller.replaceChildren(table);
    root.dataset.first = String(first);
    root.dataset.total = String(total);
    if (missing) {
      const vp = model.get("viewport") || {};
      if (vp.start !== first || vp.end !== last) save("viewport", { start: first, end: last });
    }
  }

  const full = () => draw();
  const rowsChanged = () => {
    lastWindow = ""; // new rows for the same window (a sort, a filter): draw them
    return model.get("virtual") ? drawVirtual(false) : draw();
  };
  for (const name of ["columns", "sort", "selected", "page", "pages", "summary", "multiple", "hidden", "pinned", "widths", "total", "virtual"]) {
    model.on(`change:${name}`, full);
  }
  model.on("change:rows", rowsChanged);
  model.on("change:offset", rowsChanged);
  draw();
}

export default { render };
