// The run and model table of mlo's widgets: sortable headers, a checkbox per row, a pager.
// Python owns the data (columns, rows of the current page); this view only renders it and reports
// clicks back through the synced traits `sort`, `selected` and `page`.

function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "mlo-dt";
  el.appendChild(root);

  function cell(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  }

  function toggle(id, on) {
    let selected = model.get("selected").slice();
    if (!model.get("multiple")) selected = on ? [id] : [];
    else if (on && !selected.includes(id)) selected.push(id);
    else if (!on) selected = selected.filter((s) => s !== id);
    model.set("selected", selected);
    model.save_changes();
  }

  function draw() {
    const columns = model.get("columns");
    const rows = model.get("rows");
    const sort = model.get("sort") || {};
    const selected = new Set(model.get("selected"));
    const multiple = model.get("multiple");
    root.replaceChildren();

    const table = cell("table", null, "mlo-dt-table");
    const head = document.createElement("tr");
    const all = cell("th", null, "mlo-dt-check");
    if (multiple && rows.length) {
      const box = document.createElement("input");
      box.type = "checkbox";
      box.title = "select every run of this page";
      box.checked = rows.every((r) => selected.has(r.id));
      box.addEventListener("change", () => {
        let ids = model.get("selected").filter((s) => !rows.some((r) => r.id === s));
        if (box.checked) ids = ids.concat(rows.map((r) => r.id));
        model.set("selected", ids);
        model.save_changes();
      });
      all.appendChild(box);
    }
    head.appendChild(all);
    for (const col of columns) {
      const th = cell("th", col.label, [col.numeric ? "mlo-dt-num" : "", col.highlight ? "mlo-dt-diff" : ""].join(" ").trim());
      th.dataset.column = col.key;
      th.title = col.title || col.key;
      if (col.key === sort.column) th.textContent += sort.ascending ? " ▲" : " ▼";
      if (col.sortable !== false) {
        th.classList.add("mlo-dt-sortable");
        th.addEventListener("click", () => {
          const ascending = sort.column === col.key ? !sort.ascending : col.key !== "start_time";
          model.set("sort", { column: col.key, ascending });
          model.save_changes();
        });
      }
      head.appendChild(th);
    }
    const thead = document.createElement("thead");
    thead.appendChild(head);
    table.appendChild(thead);

    const body = document.createElement("tbody");
    for (const row of rows) {
      const tr = document.createElement("tr");
      tr.dataset.id = row.id;
      if (selected.has(row.id)) tr.classList.add("mlo-dt-selected");
      const td = cell("td", null, "mlo-dt-check");
      const box = document.createElement("input");
      box.type = multiple ? "checkbox" : "radio";
      box.checked = selected.has(row.id);
      box.addEventListener("change", () => toggle(row.id, box.checked));
      td.appendChild(box);
      tr.appendChild(td);
      row.cells.forEach((text, i) => {
        const col = columns[i] || {};
        const td = cell("td", text, [col.numeric ? "mlo-dt-num" : "", col.highlight ? "mlo-dt-diff" : ""].join(" "));
        if (col.key === "status") {
          td.replaceChildren(cell("span", text, "mlo-dt-badge mlo-dt-" + text));
        }
        tr.appendChild(td);
      });
      tr.addEventListener("click", (event) => {
        if (event.target.tagName === "INPUT") return;
        toggle(row.id, !selected.has(row.id));
      });
      body.appendChild(tr);
    }
    table.appendChild(body);
    root.appendChild(table);

    const pages = model.get("pages");
    const page = model.get("page");
    const pager = cell("div", null, "mlo-dt-pager");
    const prev = cell("button", "◀");
    prev.disabled = page <= 0;
    prev.addEventListener("click", () => { model.set("page", page - 1); model.save_changes(); });
    const next = cell("button", "▶");
    next.disabled = page >= pages - 1;
    next.addEventListener("click", () => { model.set("page", page + 1); model.save_changes(); });
    pager.append(prev, cell("span", ` page ${page + 1} of ${pages} `), next, cell("span", model.get("summary"), "mlo-dt-summary"));
    root.appendChild(pager);
  }

  for (const name of ["columns", "rows", "sort", "selected", "page", "pages", "summary", "multiple"]) {
    model.on(`change:${name}`, draw);
  }
  draw();
}

export default { render };
